from setuptools import find_packages, setup

setup(
    name="dr-transfer",
    version="0.1.0",
    description="Caffe-faithful Lasagne/Theano reproduction of transfer learning "
                "and fine-tuning of BVLC GoogLeNet for diabetic retinopathy screening",
    packages=find_packages(include=["models", "models.*", "pipeline", "pipeline.*", "benchmarks"]),
    python_requires=">=3.11,<3.12",
)
