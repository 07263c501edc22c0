from setuptools import find_packages, setup


with open("README.md", encoding="utf-8") as handle:
    long_description = handle.read()

setup(
    name="birdie_hf",
    version="0.1.0",
    description="Birdie reward-driven mixture-of-objectives pre-training for DNA language models on the Hugging Face stack",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["birdie_hf", "birdie_hf.*"]),
    # Model-card templates ship inside the package (read with importlib.resources), so any install finds them.
    package_data={"birdie_hf": ["genomes/*.fna.gz", "templates/*.md"]},
    python_requires=">=3.10",
    # Floors are tested: .ci/run installs exactly these versions (.ci/floors.txt) in a clean virtualenv and runs the
    # test suite there. torch is the exception: the only CPU build on the CI index is 2.13, older ones pull
    # multi-GB CUDA wheels, so torch>=2.4 is transformers 5.2's own floor, not one CI exercises.
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "transformers>=5.2",  # 5.2: Llama honours config.is_causal=False (bidirectional classifiers)
        # 1.3: transformers 5.2's Trainer calls unwrap_model(keep_torch_compile=...); 1.7: with 1.3-1.6 a two-process
        # CPU (gloo) run hangs before its first step (measured with tests/test_distributed.py).
        "accelerate>=1.7",
        "datasets>=3.0",
        "tokenizers>=0.22.1",  # 0.22.0 pins huggingface_hub<1, which transformers 5.2 cannot use
        "peft>=0.13",
        "huggingface_hub>=1.3",  # transformers 5.2's own floor
        "scikit-learn>=1.3",
        "scipy>=1.10",  # k-mer features (sparse) and the t intervals over seeds
        "pyyaml>=6.0",
        "tqdm>=4.66.3",  # datasets 3.0's own floor
        "matplotlib>=3.7",
        "packaging>=20.0",  # transformers' own floor; birdie_hf compares library versions with it
    ],
    extras_require={
        "test": ["pytest>=7.0"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
