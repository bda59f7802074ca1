"""Packaging for dgl-emu. Tested versions are pinned in constraints.txt (see README)."""
from setuptools import find_packages, setup

setup(
    name="dgl-emu",
    version="0.1.0",
    description="Embedding MUtation (EMU) for knowledge-graph link prediction on DGL",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["dgl_emu", "dgl_emu.*"]) + ["dgl_emu._datasets"],
    package_dir={"dgl_emu._datasets": "datasets"},
    package_data={"dgl_emu._datasets": ["registry.json"]},
    install_requires=[
        "torch>=2.0",
        "dgl>=1.1",
        "packaging",
        "numpy",
        "scipy",
        "networkx",
        "click>=8",
        "pyyaml",
        "tqdm",
        "matplotlib",
        "optuna>=4.0",  # dgl-emu tune (its studies are SQLite files: SQLAlchemy comes with it)
        "pyarrow",  # reading triple files (multi-threaded CSV), the parsed-data cache, Parquet exports
        "psutil",  # launchers (network interfaces), lock holders, available memory
    ],
    extras_require={
        "test": ["pytest", "pykeen", "import-linter"],  # lint-imports checks .importlinter
        "docs": ["sphinx", "numpydoc", "sphinx-click"],
    },
    entry_points={"console_scripts": ["dgl-emu=dgl_emu.cli:main"]},
    license="MIT",
)
