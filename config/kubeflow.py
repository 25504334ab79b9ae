"""Kubeflow Pipelines' settings (kubeflow/README.md)."""

from config.folders import REPO_ROOT
from config.pipeline import PIPELINE_NAME

# (a PersistentVolumeClaim, on kind a folder of the host) holds ExampleGen's input and the serving models,
# which must outlive a run; artifacts go to KFP's object store (the pipeline root, set per run).
KFP_PIPELINE_NAME = PIPELINE_NAME.replace("_", "-")  # KFP v2 names allow only [a-z0-9-]
KFP_IMAGE_NAME = "taxi-pipeline"
KFP_PROJECT_DIR = "/opt/taxi-pipeline"  # where the image keeps schema/ (the packages are installed)
KFP_SHARED_VOLUME_CLAIM = "taxi-pipeline-data"
KFP_SHARED_DIR = "/mnt/taxi"
KFP_DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
KFP_BUILD_DIR = REPO_ROOT / "kubeflow" / "build"
KFP_PIPELINE_FILE = f"{KFP_PIPELINE_NAME}.yaml"
