"""The identities the core gives new VMs when their family does not assign them itself
(``Traits.assigns_identity`` false): MACs and UUIDs.

MACs: ``site.genmacprefix`` + random bytes, else the QEMU/KVM prefix ``52:54:00``, unique
against every ``mac.mac`` in the table (xCAT's ``genmac``). UUIDs: random (RFC 4122 v4).
"""

from __future__ import annotations

import random

from nodemgr.formats import parse_macs
from nodemgr.plugins.base import Facts, VmSpec


def fill_identity(store, spec: VmSpec) -> Facts:
    """Give *spec* MACs for NICs that lack one and a UUID if it has none.

    Args:
        store: the table store (reads ``mac`` and ``site.genmacprefix``).
        spec: the VM spec, changed in place.
    Returns:
        the facts to record when the operation succeeds (the new MACs, the new UUID).
    """
    facts = Facts()
    if any(not n.mac for n in spec.nics):
        taken = {m for r in store.select("mac") for m in parse_macs(r["mac"])}
        prefix = (store.site("genmacprefix") or "52:54:00").lower().strip(":")
        nbytes = 6 - len(prefix.split(":"))
        for nic in spec.nics:
            while not nic.mac:
                cand = prefix + "".join(f":{random.randrange(256):02x}" for _ in range(nbytes))
                if cand not in taken:
                    nic.mac = cand
                    taken.add(cand)
        facts.macs = [n.mac for n in spec.nics]
    if not spec.uuid:
        import uuid  # lazily: uuid costs ~7 ms of start-up

        spec.uuid = str(uuid.uuid4())
        facts.uuid = spec.uuid
    return facts
