"""Test AMSNet with BasicSR's pipeline: ``python amsnet_basicsr/test.py -opt options/test_SIDD.yml``."""
from amsnet_basicsr.pipelines import test_main

if __name__ == '__main__':
    test_main()
