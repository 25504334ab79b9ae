"""The pipeline on Kubeflow Pipelines 2.x: the compiler (`make kfp-compile`), the entrypoint every
step's container runs, and the script that submits a run. Beside them: the Dockerfile of the pipeline
image, the kind recipe and README.md; and the serving patterns as KServe and Istio manifests
(`serving_manifests.py`, for `taxi-pipeline serve manifests`).

May import: config, models, registry, inputs, components, pipeline, reports.
"""
