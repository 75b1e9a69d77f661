"""How `make test`'s workers share the tests (pytest-xdist: `-n N --dist loadgroup`).

The unit of work is a group: every test that reads the session's finished runs
(tests/helpers/finished_runs.py) is in one group, so those runs are trained once, on one worker;
every other test is grouped with its module, so module fixtures are built once. Groups are
handed out in collection order, which puts the finished runs first, then the modules that train
MMF or install: the longest work starts at once and the many short tests fill the other workers
around it.

xdist's own `loadgroup` reads `xdist_group` marks through a test id it rewrites, which pytest 9
no longer lets it do; so the workers, which see the tests' fixtures, write each test's group to a
file the controller names, and the controller's scheduler (xdist's scope scheduler) reads it.
Without xdist only the order applies.
"""

from __future__ import annotations

import json
import os
import tempfile

FINISHED_RUNS = "finished_runs"
GROUPS = "pekit_test_groups"  # the key of the groups file's path in each worker's input


def group(item):
    if FINISHED_RUNS in item.fixturenames:
        return FINISHED_RUNS
    return module_of(item.nodeid)


def module_of(nodeid):
    return nodeid.split("::", 1)[0]


def order(items):
    """The finished runs' group first, then modules with a `slow` test, then the rest; the
    collection order within each (sort is stable)."""
    slow = {module_of(i.nodeid) for i in items if i.get_closest_marker("slow")}
    items.sort(key=lambda i: (group(i) != FINISHED_RUNS, module_of(i.nodeid) not in slow))


def publish_groups(config, items):
    """On a worker: write {test id: group} where the controller said (each worker writes the same
    content, whole, under its own temporary name first)."""
    path = getattr(config, "workerinput", {}).get(GROUPS)
    if not path:
        return
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".groups-")
    with os.fdopen(fd, "w") as f:
        json.dump({item.nodeid: group(item) for item in items}, f)
    os.replace(tmp, path)


def _groups_path(config):
    path = getattr(config, "_pekit_groups_path", None)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="pekit-test-groups-", suffix=".json")
        os.close(fd)
        os.unlink(path)  # written by the workers; its absence until then is a clear error
        config._pekit_groups_path = path
    return path


def tell_worker(node):
    """On the controller: each worker learns where to write the groups."""
    node.workerinput[GROUPS] = _groups_path(node.config)


def forget_groups(config):
    path = getattr(config, "_pekit_groups_path", None)
    if path and os.path.exists(path):
        os.unlink(path)


def scheduler(config, log):
    """The controller's scheduler for `--dist loadgroup`; None leaves any other to xdist."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """xdist's scope scheduler, a scope being a group; groups in collection order."""

        def __init__(self, config, log):
            super().__init__(config, log)
            self.groups = None
            # The order is ours (order()): xdist would sort scopes by their number of tests.
            config.option.loadscopereorder = False

        def schedule(self):
            if self.groups is None:
                with open(_groups_path(config), encoding="utf-8") as f:
                    self.groups = json.load(f)
            super().schedule()

        def _split_scope(self, nodeid):
            return self.groups.get(nodeid) or module_of(nodeid)

    return GroupScheduling(config, log)
