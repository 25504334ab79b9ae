"""Installs the taxi pipeline's packages so components load them by module path."""

from setuptools import find_packages, setup

setup(
    name="taxi-tfx-pipeline",
    version="0.1.0",
    description="Chicago Taxi big-tipper model: a production TFX 1.16 pipeline on Beam and Kubeflow.",
    python_requires="==3.10.*",
    packages=find_packages(
        include=[
            f"{package}{suffix}"
            for package in (
                "config",
                "models",
                "registry",
                "inputs",
                "components",
                "pipeline",
                "kubeflow",
                "reports",
                "serving",
                "clients",
                "monitoring",
                "cli",
            )
            for suffix in ("", ".*")
        ]
    ),
    package_data={"": ["*.pbtxt"], "reports": ["model_card_schema/*.json"]},
    # Versions come from requirements.lock; these only name what the code imports.
    install_requires=["tfx[kfp]==1.16.0", "apache-beam[gcp]==2.59.0", "tf-keras==2.16.*"],
    entry_points={"console_scripts": ["taxi-pipeline=cli.main:main"]},
)
