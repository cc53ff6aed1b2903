{{/*
Helpers of vllm-stack-standin. Label sets and names follow the contract of vllm/vllm-stack 0.1.12
(vllm-stack-e2e docs/chart-contract.md); everything else is this chart's own.
*/}}

{{/* Renders a map as YAML with every value a string, so label values like "true" or 1 stay valid. */}}
{{- define "standin.kv" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- $_ := set $out $k (toString $v) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The marker label every object carries, so reports can tell the stand-in from the real chart. */}}
{{- define "standin.markerLabels" -}}
vllm-stack-e2e/stand-in: "true"
{{- end -}}

{{/* The marker annotation: names what this object stands in for. */}}
{{- define "standin.markerAnnotations" -}}
vllm-stack-e2e/stand-in: {{ printf "rendered by %s %s, the vllm-stack-e2e lab's stand-in for vllm/vllm-stack %s" .Chart.Name .Chart.Version .Chart.AppVersion | quote }}
{{- end -}}

{{/* Annotations of an object: the marker plus the user's (a map, may be empty). Call with (list $ $userAnnotations). */}}
{{- define "standin.annotations" -}}
{{- $root := index . 0 -}}
{{- $user := index . 1 | default dict -}}
{{- toYaml (merge (include "standin.markerAnnotations" $root | fromYaml) $user) -}}
{{- end -}}

{{/*
Labels shared by engine objects. The real chart derives part-of from its chart name (vllm-stack);
the stand-in writes that name so label selectors written for the real chart match.
managed-by is "helm" as the real chart renders it; note that helm install/upgrade overwrites the
top-level object label with "Helm" while pod template labels keep "helm".
Call with (dict "root" $ "model" $modelSpec).
*/}}
{{- define "standin.engineStandardLabels" -}}
app.kubernetes.io/name: {{ .model.name | toString | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/component: serving-engine
app.kubernetes.io/part-of: vllm-stack
app.kubernetes.io/managed-by: helm
{{- end -}}

{{/* servingEngineSpec.labels (default environment=test, release=test): what the router selects engines by. */}}
{{- define "standin.engineUserLabels" -}}
{{- include "standin.kv" (.Values.servingEngineSpec.labels | default dict) -}}
{{- end -}}

{{/* Engine pod selector: model, helm-release-name, standard labels, servingEngineSpec.labels. */}}
{{- define "standin.engineSelector" -}}
{{- $labels := dict "model" (toString .model.name) "helm-release-name" .root.Release.Name -}}
{{- $labels = merge $labels (include "standin.engineStandardLabels" . | fromYaml) -}}
{{- $labels = merge $labels (include "standin.engineUserLabels" .root | fromYaml) -}}
{{- include "standin.kv" $labels -}}
{{- end -}}

{{/* Router labels: standard router labels plus routerSpec.labels (default environment=router, release=router). */}}
{{- define "standin.routerSelector" -}}
{{- $labels := dict
      "app.kubernetes.io/name" "router"
      "app.kubernetes.io/instance" .Release.Name
      "app.kubernetes.io/component" "router"
      "app.kubernetes.io/part-of" "vllm-stack"
      "app.kubernetes.io/managed-by" "helm" -}}
{{- $labels = merge $labels (.Values.routerSpec.labels | default dict) -}}
{{- include "standin.kv" $labels -}}
{{- end -}}

{{/* "a=b,c=d" from a label map: the router's --k8s-label-selector. */}}
{{- define "standin.selectorString" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Container port of the engine (servingEngineSpec.containerPort, default 8000). */}}
{{- define "standin.enginePort" -}}
{{- .Values.servingEngineSpec.containerPort | default 8000 -}}
{{- end -}}

{{/*
One probe from its values: timings with the real chart's defaults (15 s delay, 10 s period,
3 failures) and an httpGet on /health at the engine port unless exec/tcpSocket/grpc is given.
Call with (dict "probe" $values "port" $defaultPort).
*/}}
{{- define "standin.probe" -}}
{{- $p := .probe -}}
initialDelaySeconds: {{ $p.initialDelaySeconds | default 15 }}
periodSeconds: {{ $p.periodSeconds | default 10 }}
failureThreshold: {{ $p.failureThreshold | default 3 }}
{{- with $p.timeoutSeconds }}
timeoutSeconds: {{ . }}
{{- end }}
{{- with $p.successThreshold }}
successThreshold: {{ . }}
{{- end }}
{{- if $p.exec }}
exec:
  {{- toYaml $p.exec | nindent 2 }}
{{- else if $p.tcpSocket }}
tcpSocket:
  {{- toYaml $p.tcpSocket | nindent 2 }}
{{- else if $p.grpc }}
grpc:
  {{- toYaml $p.grpc | nindent 2 }}
{{- else }}
{{- $get := $p.httpGet | default dict }}
httpGet:
  path: {{ $get.path | default "/health" }}
  port: {{ $get.port | default .port }}
  {{- with $get.scheme }}
  scheme: {{ . }}
  {{- end }}
  {{- with $get.httpHeaders }}
  httpHeaders:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
Engine resources from requestCPU/requestMemory/requestGPU (+ limitCPU/limitMemory): the GPU
resource (requestGPUType, default nvidia.com/gpu) appears in requests and limits only when
requestGPU > 0, so a CPU-only engine asks for no GPU at all.
*/}}
{{- define "standin.engineResources" -}}
{{- $m := . -}}
{{- $gpus := $m.requestGPU | default 0 | float64 -}}
{{- $gpuType := $m.requestGPUType | default "nvidia.com/gpu" -}}
requests:
  cpu: {{ required (printf "modelSpec %q needs requestCPU (or resources)" (toString $m.name)) $m.requestCPU | toString | quote }}
  memory: {{ required (printf "modelSpec %q needs requestMemory (or resources)" (toString $m.name)) $m.requestMemory | toString | quote }}
  {{- if gt $gpus 0.0 }}
  {{ $gpuType }}: {{ $m.requestGPU | toString | quote }}
  {{- end }}
{{- if or (gt $gpus 0.0) (hasKey $m "limitCPU") (hasKey $m "limitMemory") }}
limits:
  {{- with $m.limitCPU }}
  cpu: {{ . | toString | quote }}
  {{- end }}
  {{- with $m.limitMemory }}
  memory: {{ . | toString | quote }}
  {{- end }}
  {{- if gt $gpus 0.0 }}
  {{ $gpuType }}: {{ $m.requestGPU | toString | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
`vllm serve` arguments from modelSpec.vllmConfig, with the real chart's flag spellings and its
quirk that a present vllmConfig without enablePrefixCaching turns prefix caching off.
*/}}
{{- define "standin.vllmConfigArgs" -}}
{{- with .vllmConfig -}}
{{- $args := list -}}
{{- if hasKey . "enableChunkedPrefill" -}}
{{- $args = append $args (ternary "--enable-chunked-prefill" "--no-enable-chunked-prefill" (eq (toString .enableChunkedPrefill) "true")) -}}
{{- end -}}
{{- $args = append $args (ternary "--enable-prefix-caching" "--no-enable-prefix-caching" (eq (toString .enablePrefixCaching) "true")) -}}
{{- $flags := list
      (list "maxModelLen" "--max-model-len")
      (list "dtype" "--dtype")
      (list "tensorParallelSize" "--tensor-parallel-size")
      (list "maxNumSeqs" "--max-num-seqs")
      (list "gpuMemoryUtilization" "--gpu_memory_utilization")
      (list "maxLoras" "--max_loras")
      (list "runner" "--runner")
      (list "convert" "--convert") -}}
{{- range $pair := $flags -}}
{{- if hasKey $.vllmConfig (first $pair) -}}
{{- $args = append $args (last $pair) -}}
{{- $args = append $args (toString (index $.vllmConfig (first $pair))) -}}
{{- end -}}
{{- end -}}
{{- range .extraArgs -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}
{{- end -}}
