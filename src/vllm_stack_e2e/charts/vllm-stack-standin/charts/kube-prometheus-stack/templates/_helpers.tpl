{{/*
<release>-kube-prometheus-stack cut to 26 characters, a trailing "-" dropped (the real chart's
rule: the operator appends suffixes such as "-prometheus" and object names stay short);
nameOverride/fullnameOverride as in the real chart.
*/}}
{{- define "kps.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 26 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 26 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 26 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kps.labels" -}}
release: {{ .Release.Name | quote }}
heritage: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/part-of: kube-prometheus-stack
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
vllm-stack-e2e/stand-in: "true"
{{- end -}}

{{/* A selector from values, or the release label when it is empty and NilUsesHelmValues. */}}
{{- define "kps.selector" -}}
{{- $sel := index . 0 -}}
{{- $nilUsesHelm := index . 1 -}}
{{- $root := index . 2 -}}
{{- if $sel -}}
{{- toYaml $sel -}}
{{- else if $nilUsesHelm -}}
matchLabels:
  release: {{ $root.Release.Name | quote }}
{{- else -}}
{}
{{- end -}}
{{- end -}}
