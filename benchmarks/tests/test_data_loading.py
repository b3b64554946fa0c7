"""The data-loading benchmark (benchmarks/data_loading.py): synthetic SIDD-like photos are packed into an LMDB of
crops, and both sources go through AMSNet's training dataset and a DataLoader; it prints and returns crops/s."""
import data_loading


def test_synthetic_folder_and_lmdb_both_give_crops_per_second(tmp_path, capsys):
    results = data_loading.main(['--images', '2', '--image-size', '512x640', '--crop-size', '32', '--batch-size', '2',
                                 '--batches', '2', '--workers', '0', '--workdir', str(tmp_path)])
    assert set(results) == {('PNG folder', 0), ('LMDB 512 crops', 0)}
    assert all(rate > 0 for rate in results.values())
    assert 'LMDB / PNG speed-up with 0 worker(s)' in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the synthetic data lived in a temporary folder under --workdir
