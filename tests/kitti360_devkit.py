"""Test-only access to the official KITTI-360 devkit (kitti360scripts 1.0.0) as an oracle.

kitti360scripts predates numpy 2 (``np.int``), PyYAML 6 (``yaml.load`` without a Loader) and matplotlib 3.9
(``cm.get_cmap``). The shims below are applied *only to the devkit's own module globals* (its ``np``,
``yaml`` and ``cm`` names), so numpy, yaml and matplotlib stay untouched for the rest of the test session.
Library code never imports this module.

Tests import it as ``import kitti360_devkit`` (pytest puts tests/ on sys.path) or through the ``devkit`` fixture.
"""

from __future__ import annotations

import functools
import types

import matplotlib
import numpy
import yaml

from kitti360scripts.devkits.commons import loadCalibration as _load_calibration
from kitti360scripts.helpers import annotation as _annotation
from kitti360scripts.helpers import labels as _labels
from kitti360scripts.helpers import project as _project


class _NumpyWithRemovedAliases(types.ModuleType):
    """numpy, plus the ``np.int``/``np.float`` aliases numpy 1.24 removed."""

    int = int
    float = float

    def __getattr__(self, name: str):
        return getattr(numpy, name)


_np_shim = _NumpyWithRemovedAliases("numpy_with_removed_aliases")
_yaml_shim = types.SimpleNamespace(load=functools.partial(yaml.load, Loader=yaml.SafeLoader))
_cm_shim = types.SimpleNamespace(get_cmap=lambda name: matplotlib.colormaps[name])

_project.np = _np_shim
_project.yaml = _yaml_shim
_annotation.np = _np_shim
_annotation.cm = _cm_shim

CameraPerspective = _project.CameraPerspective
CameraFisheye = _project.CameraFisheye
readYAMLFile = _project.readYAMLFile
Annotation3D = _annotation.Annotation3D
loadCalibrationCameraToPose = _load_calibration.loadCalibrationCameraToPose
loadCalibrationRigid = _load_calibration.loadCalibrationRigid
loadPerspectiveIntrinsic = _load_calibration.loadPerspectiveIntrinsic
kittiId2label = _labels.kittiId2label
id2label = _labels.id2label
