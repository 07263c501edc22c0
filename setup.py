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
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "transformers>=5.2",  # 5.2: Llama honours config.is_causal=False (bidirectional classifiers)
        "accelerate>=1.0",
        "datasets>=3.0",
        "tokenizers>=0.20",
        "evaluate>=0.4",
        "peft>=0.13",
        "huggingface_hub>=0.25",
        "scikit-learn>=1.3",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
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
