"""Eigen / Eigen-Zhou split logic on small hand-made lists whose overlaps are known."""
import numpy as np
import pytest

from vipocc.data import eigen_splits as es
from vipocc.data.eigen_splits import RawSplitEntry as E

A = "2011_09_26/2011_09_26_drive_0001_sync"
B = "2011_09_26/2011_09_26_drive_0009_sync"
C = "2011_09_30/2011_09_30_drive_0016_sync"  # a "test drive"
D = "2011_10_03/2011_10_03_drive_0027_sync"


def _both_sides(seq, frames):
    return [E(seq, f, side) for f in frames for side in ("l", "r")]


@pytest.fixture
def lists():
    """BTS-like train (A, B, D; both sides), BTS's original val (frames of A and B), the Eigen test list (C and one
    frame of B) and ViPOcc's versions: train + the test lines appended, val = test."""
    train = _both_sides(A, range(0, 10)) + _both_sides(B, range(0, 6)) + _both_sides(D, range(0, 8))
    val_ori = [E(A, 20, "l"), E(B, 30, "r")]
    test = [E(C, 69, "l"), E(C, 70, "l"), E(B, 3, "l")]
    return train, val_ori, test


def test_round_trip_and_parsing(tmp_path, lists):
    train, _, _ = lists
    path = es.write_raw_split(tmp_path / "sub" / "train_files.txt", train)
    assert path.read_text().splitlines()[:2] == [f"{A} 0 l", f"{A} 0 r"]
    assert es.read_raw_split(path) == train
    padded = tmp_path / "test_files.txt"
    padded.write_text(f"{C} 0000000069 l\n\n{B} 3 r\n")  # monodepth2's Eigen test list zero-pads; blank line
    assert es.read_raw_split(padded) == [E(C, 69, "l"), E(B, 3, "r")]
    assert E(C, 69, "l").date == "2011_09_30" and E(C, 69, "l").drive == "2011_09_30_drive_0016_sync"


@pytest.mark.parametrize("line, problem", [(f"{A} 5", "expected '<date>/<drive>"), (f"{A} five l", "frame index"),
                                           (f"{A} 5 x", "side"), ("drive_0001 5 l", "<date>/<drive folder>")])
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad_files.txt"
    path.write_text(f"{A} 1 l\n{line}\n")
    with pytest.raises(ValueError, match=rf"bad_files\.txt, line 2: .*{problem}"):
        es.read_raw_split(path)
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        es.read_raw_split(tmp_path / "absent.txt")


def test_check_no_leak_lists_every_overlap(lists):
    train, val_ori, test = lists
    es.check_no_leak(train[:4], val_ori, [E(C, 69, "l")])
    with pytest.raises(ValueError) as info:
        es.check_no_leak(train, val_ori + [E(C, 70, "r"), E(A, 1, "l")], test)
    message = str(info.value)
    # train and test share B 3 (both sides count once); val and test share C 70 (other side); train and val share A 1
    assert f"train and test share 1 frames: {B} 3" in message
    assert f"val and test share 1 frames: {C} 70" in message
    assert f"train and val share 1 frames: {A} 1" in message
    with pytest.raises(ValueError, match=rf"train and test share 1 drives: {B}"):
        es.check_no_leak(train, [], test, by="drive")


def test_overlap_list_is_truncated_but_counted():
    many = _both_sides(A, range(30))
    with pytest.raises(ValueError, match=r"share 30 frames: .*\(\+10 more\)"):
        es.check_no_leak(many, [], many)


def test_reference_split_rebuilds_vipocc_lists_and_leaks(lists):
    train, val_ori, test = lists
    vipocc_train, vipocc_val = es.reference_eigen_zhou(train, val_ori, test)
    # ViPOcc appended the test lines (B 3 l is already in train, so only C 69 and C 70 are new)
    assert vipocc_train == train + [E(C, 69, "l"), E(C, 70, "l")] and vipocc_val == test
    assert es.reference_eigen_zhou(vipocc_train, vipocc_val, test) == (vipocc_train, vipocc_val)  # unchanged
    with pytest.raises(ValueError, match="train and test share 3 frames"):
        es.check_no_leak(vipocc_train, vipocc_val, test)


def test_leak_free_with_the_original_val(lists):
    train, val_ori, test = lists
    vipocc_train, _ = es.reference_eigen_zhou(train, None, test)
    clean_train, val = es.leak_free_eigen_zhou(vipocc_train, val_ori, test)
    assert val == val_ori
    # removed: the appended test lines, and drive B (it holds a test frame): 12 of its entries
    assert clean_train == _both_sides(A, range(0, 10)) + _both_sides(D, range(0, 8))
    es.check_no_leak(clean_train, val, test)
    frame_level, _ = es.leak_free_eigen_zhou(vipocc_train, val_ori, test, exclude_test_drives=False)
    assert len(frame_level) == len(train) - 2  # only B 3 l/r
    assert E(B, 4, "l") in frame_level and E(B, 3, "r") not in frame_level


def test_leak_free_refuses_test_as_validation(lists):
    train, _, test = lists
    with pytest.raises(ValueError, match=rf"val: 3 of its frames are Eigen test frames.*{C} 69"):
        es.leak_free_eigen_zhou(train, test, test)


def test_explicit_val_frames_leave_train(lists):
    train, _, test = lists
    clean_train, val = es.leak_free_eigen_zhou(train, [E(A, 2, "l")], test)
    assert E(A, 2, "r") not in clean_train and E(A, 3, "r") in clean_train
    es.check_no_leak(clean_train, val, test)


def test_carved_validation_keeps_drives_whole(lists):
    train, _, test = lists
    extra = _both_sides("2011_09_29/2011_09_29_drive_0026_sync", range(4))
    train = train + extra
    clean_train, val = es.leak_free_eigen_zhou(train, None, test, val_fraction=0.25,
                                               rng=np.random.default_rng(3))
    train_drives, val_drives = {e.seq for e in clean_train}, {e.seq for e in val}
    assert not train_drives & val_drives and val_drives and train_drives
    assert train_drives | val_drives == {A, D, extra[0].seq}  # B dropped (test drive)
    assert len(val) >= 0.25 * (len(clean_train) + len(val))
    es.check_no_leak(clean_train, val, test, by="drive")
    again = es.leak_free_eigen_zhou(train, None, test, val_fraction=0.25, rng=np.random.default_rng(3))
    assert again == (clean_train, val)  # deterministic given the generator


@pytest.mark.parametrize("fraction, n_val_drives", [(0.2, 1), (0.25, 1), (0.26, 2), (0.5, 2), (0.51, 3), (0.9, 3)])
def test_carved_validation_size_by_hand(fraction, n_val_drives):
    """Four drives of 10 entries: the first prefix of drives reaching the fraction goes to val (never all four)."""
    train = [E(seq, f, "l") for seq in (A, B, C, D) for f in range(10)]
    clean_train, val = es.leak_free_eigen_zhou(train, None, [E("2011_09_26/2011_09_26_drive_0002_sync", 0, "l")],
                                               val_fraction=fraction, rng=np.random.default_rng(0))
    assert len(val) == 10 * n_val_drives and len(clean_train) == 40 - len(val)


def test_carving_needs_two_drives():
    with pytest.raises(ValueError, match="cannot carve"):
        es.leak_free_eigen_zhou(_both_sides(A, range(5)), None, [E(C, 1, "l")])
    with pytest.raises(ValueError, match="val_fraction"):
        es.leak_free_eigen_zhou(_both_sides(A, range(5)), None, [E(C, 1, "l")], val_fraction=1.5)


def test_load_eigen_zhou_picks_the_validation_list(tmp_path, lists):
    train, val_ori, test = lists
    vipocc_train, vipocc_val = es.reference_eigen_zhou(train, None, test)
    es.write_raw_split(tmp_path / "eigen_zhou" / "train_files.txt", vipocc_train)
    es.write_raw_split(tmp_path / "eigen_zhou" / "val_files.txt", vipocc_val)  # ViPOcc: val = test
    test_file = es.write_raw_split(tmp_path / "eigen" / "test_files.txt", test)
    carved = es.load_eigen_zhou(tmp_path / "eigen_zhou", test_file)
    assert carved.val_source == "carved from train by drive" and carved.test == test
    es.check_no_leak(carved.train, carved.val, carved.test)
    es.write_raw_split(tmp_path / "eigen_zhou" / "val_files_ori.txt", val_ori)
    original = es.load_eigen_zhou(tmp_path / "eigen_zhou", test_file)
    assert original.val == val_ori and original.val_source.endswith("val_files_ori.txt")
    reference = es.load_eigen_zhou(tmp_path / "eigen_zhou", test_file, leak_free=False)
    assert reference.train == vipocc_train and reference.val == test
