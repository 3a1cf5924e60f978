"""Spatial-labelling adjacency against the exact sums and weights of REFERENCE §4.2/§4.3."""

from __future__ import annotations

import numpy as np
import pytest

from mmcl.models.graph import edges_to_matrix, normalize_columns, spatial_adjacency
from mmcl.skeleton.layouts import KINECT20, NTU25


def test_edge_matrix_direction_and_normalisation():
    a = edges_to_matrix([(0, 1), (2, 1)], 3)
    assert a[1, 0] == 1 and a[1, 2] == 1 and a.sum() == 2  # row = receiver, column = sender
    n = normalize_columns(np.array([[1.0, 0.0], [3.0, 0.0]]))
    np.testing.assert_allclose(n, [[0.25, 0.0], [0.75, 0.0]])  # zero column stays zero


def test_ntu25_graph():
    a = spatial_adjacency(NTU25)
    assert a.shape == (3, 25, 25) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(25))
    assert a[0].sum() == 25 and a[1].sum() == pytest.approx(24) and a[2].sum() == pytest.approx(20)
    j = lambda k: k - 1  # noqa: E731 - 1-based joint numbers as in REFERENCE §4.2
    # inward: A1[parent, child] = 1; root J21's column is zero
    assert a[1][j(21), j(2)] == 1 and a[1][j(8), j(23)] == 1 and a[1][:, j(21)].sum() == 0
    assert set(np.unique(a[1])) == {0.0, 1.0}
    # outward: A2[child, parent] = 1 / children(parent)
    for child in (2, 3, 5, 9):
        assert a[2][j(child), j(21)] == pytest.approx(0.25)
    for child in (13, 17):
        assert a[2][j(child), j(1)] == pytest.approx(0.5)
    assert a[2][j(22), j(23)] == 1 and a[2][j(24), j(25)] == 1 and a[2][j(1), j(2)] == 1
    leaves = [4, 16, 20, 22, 24]
    assert [k for k in range(1, 26) if a[2][:, j(k)].sum() == 0] == leaves
    np.testing.assert_allclose(a[2].sum(axis=0)[[j(k) for k in range(1, 26) if k not in leaves]], 1.0, rtol=1e-6)


def test_kinect20_graph():
    a = spatial_adjacency(KINECT20)
    assert a.shape == (3, 20, 20)
    assert a[0].sum() == 20 and a[1].sum() == pytest.approx(19) and a[2].sum() == pytest.approx(15)
    for child in (2, 4, 5, 9):
        assert a[2][child - 1, 3 - 1] == pytest.approx(0.25)
    for child in (13, 17):
        assert a[2][child - 1, 1 - 1] == pytest.approx(0.5)
    assert a[1][:, 3 - 1].sum() == 0  # root J3
    assert np.array_equal(spatial_adjacency("kinect20"), a)
