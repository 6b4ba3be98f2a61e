"""Out of core and on a cluster: fitting Dask DataFrames from sufficient statistics.

A Dask DataFrame is reduced partition by partition to the model's
sufficient statistics (:mod:`mixedlm_ext.design.statistics`): one pass to
find the levels of the factor variables (and the groups of crossed
designs) when the model has any, one pass for the statistics, each
partition summarised where it lives and the summaries added in a tree.
The client receives only the merged statistics (``O(parameters + groups x
q^2)``), and the fit runs on the design made from them, exactly as in
memory.  Predictions map over the partitions.  Whatever scheduler is
active computes: the default threads, a ``dask.distributed`` client on a
``LocalCluster`` or on a remote cluster.

Dask is an optional dependency (``pip install "mixedlm_ext[dask]"``); this
package imports it only when a Dask DataFrame arrives.
"""
from .frames import is_dask_frame

__all__ = ["is_dask_frame"]
