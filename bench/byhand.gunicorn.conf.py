"""gunicorn settings for the benchmark's hand-written callback (bench/netboot_bench.py):
nodemgr's own settings (etc/gunicorn.conf.py), with each worker's
``nodemgr.web.callback.finish`` replaced by :class:`netboot_bench.ByHand` (or
:class:`netboot_bench.ByHandPg` on PostgreSQL) — same app, same
routes, same server, only the callback's work written by hand. Never used outside bench/.
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "..", "etc", "gunicorn.conf.py")) as _f:
    exec(compile(_f.read(), "etc/gunicorn.conf.py", "exec"))

_nodemgr_post_worker_init = post_worker_init  # noqa: F821 - defined by the exec above


def post_worker_init(worker):
    _nodemgr_post_worker_init(worker)
    sys.path.insert(0, _here)
    from netboot_bench import ByHand, ByHandPg

    from nodemgr.web import callback

    state = {}

    def finish(store, node, *, kind, remote_addr, forwarded_for, token):
        if "by_hand" not in state:
            if store.dialect == "postgresql":
                state["by_hand"] = ByHandPg(store.url, store.site("tftpdir"))
            else:
                path = store._conn.execute("PRAGMA database_list").fetchone()[2]
                state["by_hand"] = ByHand(path, store.site("tftpdir"))
        code = state["by_hand"](node, remote_addr, token or "")
        return callback.Answer(code, f"{node}: booted" if code == 200 else "refused")

    callback.finish = finish
