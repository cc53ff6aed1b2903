"""The tutorial's steps, one module each (docs/tutorial.md): what to install and what each step
observes. Step 5 only reads what step 4 made, so its checks live in its tests.

step1_observability · step2_vllm · step3_keda · step4_upgrade · step6_scale_up ·
step7_advanced (scale to zero, HPA behavior, fallback) · step8_cleanup
"""
