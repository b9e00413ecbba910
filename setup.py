"""geoest: photo geolocation with hierarchical S2 partitionings and scene classification."""
from setuptools import find_packages, setup

setup(
    name="geoest",
    version="0.1.0",
    description=("Geolocation estimation of photos using a hierarchical model and scene "
                 "classification (Müller-Budack et al., ECCV 2018) in TensorFlow 2 / Keras 3."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["geoest", "geoest.*"]),
    package_data={"geoest": ["gin/*.gin", "gin/base/*.gin"]},  # geoest/gin links to gin/
    install_requires=[
        "tensorflow>=2.16",          # Keras 3 is TensorFlow's Keras from 2.16 on
        "keras>=3.15,<3.16",        # geoest.training uses private Keras API checked on 3.15
        "tensorflow-datasets>=4.9",
        "simplejpeg>=1.6,<2",       # strict libjpeg-turbo decoding: training drops corrupt JPEG data
        "importlib_resources>=6",   # tensorflow-datasets needs it to prepare data sets
        "tensorboard>=2.16",
        "s2geometry>=0.11",
        "numpy>=1.26",
        "scipy>=1.10,<2",            # k-d tree and sparse matrices of the distance weights W_R
        "absl-py>=2.0",
        "gin-config>=0.5,<0.6",     # geoest.training.config reads private gin state checked on 0.5
        "pandas>=2.1",
        "pyarrow>=14",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "pillow>=10",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5",
                 "grpcio-tools>=1.81.1"],  # compiles the published caffe.proto to write test caffemodels
        # Converting the Places365 ResNet-152 Caffe release (geoest.scene.caffe): OpenCV's Caffe importer,
        # which OpenCV 5 no longer has.
        "scene": ["opencv-python-headless>=4.8,<5"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        # python -m geoest.download; geoest.data.download uses img2dataset's private main.Resizer (checked on 1.47)
        "download": ["img2dataset>=1.47,<1.48"],
        "ray": ["img2dataset>=1.47,<1.48", "ray>=2.9"],           # --distributor=ray
        "spark": ["img2dataset>=1.47,<1.48", "pyspark>=3.5"],     # --distributor=pyspark (needs a Java runtime)
    },
)
