"""The tutorial's steps, one module each: what to install and the checks that step needs.

1 observability · 2 vllm · 3 keda · 4 upgrade · 5 autoscaler · 6 scaling · 7 scenarios · 8 cleanup
"""
