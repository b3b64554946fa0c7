"""amsnet-basicsr: AMSNet (ECCV 2024) self-supervised real image denoising as a BasicSR plugin."""
from setuptools import find_packages, setup

# amsnet-export writes ONNX (torch's dynamo exporter needs onnxscript) and checks it with onnxruntime
ONNX = ['onnx', 'onnxscript', 'onnxruntime']

setup(
    name='amsnet_basicsr',
    version='0.1.0',
    description='AMSNet: asymmetric mask scheme for self-supervised real image denoising, as a BasicSR plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['amsnet_basicsr', 'amsnet_basicsr.*']),  # benchmarks/ is research: not installed
    install_requires=[  # what this package imports itself; basicsr brings the rest of its own needs
        'basicsr==1.4.2',
        'torch>=2.9',  # tested: 2.9.1 and 2.14.1
        'torchvision>=0.24',
        'spandrel>=0.4',
        'spandrel_extra_arches>=0.2',
        'numpy',
        'opencv-python',
        'pyyaml',
        'tb-nightly',  # the tensorboard module (basicsr's choice of distribution) for BasicSR's TensorBoard logger
        'tqdm',
        'scipy',
        'h5py',
        'scikit-image',
        # bm3d: the student's teacher of amsnet-train-folder (distill/classical.py: BM3D given the measured noise
        # PSD) and the demo's baseline; PyWavelets: scikit-image's noise estimate (estimate_sigma) that sets the
        # demo's NLM / BM3D baselines (baselines.py)
        'bm3d',
        'PyWavelets',
        'Pillow',
    ],
    extras_require={
        'onnx': ONNX,
        # the scripts in benchmarks/ (run from a checkout, `python benchmarks/<name>.py`): beyond install_requires they
        # need only the ONNX stack, for inference_speed.py's onnxruntime row of the student
        'bench': ONNX,
        # tests/ and benchmarks/tests (pytest.ini testpaths): what both import; ruff (pinned: a new release may add
        # checks) is the linter .ci/run applies with the settings of pyproject.toml
        'test': ['pytest', 'ruff==0.17.6', *ONNX],
    },
    entry_points={
        'console_scripts': [
            'amsnet=amsnet_basicsr.cli:main',
            'amsnet-train=amsnet_basicsr.pipelines:train_main',
            'amsnet-test=amsnet_basicsr.pipelines:test_main',
            'amsnet-demo=amsnet_basicsr.demo:main',
            'amsnet-denoise=amsnet_basicsr.denoise:main',
            'amsnet-distill-prepare=amsnet_basicsr.distill.targets:main',
            'amsnet-export=amsnet_basicsr.export:main',
            'amsnet-train-folder=amsnet_basicsr.train_folder:main',
        ],
    },
)
