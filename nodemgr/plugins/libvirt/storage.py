"""Storage pools and volumes on one libvirt connection, for the libvirt driver.

xCAT's rules (kvm.pm): a ``vm.storage`` location is served by an existing pool with the
same target (any name) or by a pool ``dir_<path>`` / ``nfs_<server_path>`` / the volume
group's name, defined, built and started when missing; volumes are ``<node>.<dev>.<fmt>``
(:func:`~nodemgr.plugins.libvirt.domain_xml.volume_name`). Everything goes through the
libvirt connection (no qemu-img, no ssh), so a remote host works as a local one. The XML
comes from :mod:`.domain_xml`; errors are libvirt's own (``libvirtError``), which the
driver's ``translate`` maps, or :class:`~nodemgr.errors.PermanentError` with a message.
"""

from __future__ import annotations

from typing import Any

from nodemgr.plugins.base import DriverError, PermanentError, Transient, retry
from nodemgr.plugins.libvirt.domain_xml import (
    Location,
    MiB,
    parse_location,
    pool_target_path,
    volume_xml,
)

#: libvirt's delete right after a destroy is flaky (xCAT #455): tries and pause between them.
PURGE_RETRIES = 10
PURGE_DELAY_S = 0.2
#: chunk size for volume uploads through a libvirt stream, bytes
UPLOAD_CHUNK = 1 << 20


def reason(exc: BaseException) -> str:
    """libvirt's own message of *exc* (or its text), on one line."""
    get = getattr(exc, "get_error_message", None)
    msg = get() if get else None
    return " ".join(str(msg or exc).split())


class Storage:
    """The pools and volumes of the driver's connection (pools cached per location until
    :meth:`clear`).

    Args:
        driver: the :class:`~nodemgr.plugins.libvirt.driver.LibvirtDriver` whose ``conn``
            and ``lv`` (the libvirt module) are used; its endpoint option ``pools_dir`` is
            where netfs pools are mounted (default ``/var/lib/nodemgr/pools``).
    """

    def __init__(self, driver: Any) -> None:
        self._drv = driver
        self._pools: dict[str, Any] = {}

    @property
    def conn(self) -> Any:
        return self._drv.conn

    @property
    def lv(self) -> Any:
        return self._drv.lv

    def clear(self) -> None:
        """Forget cached pools (the connection closed)."""
        self._pools.clear()

    def pool_for(self, loc: Location, create: bool = True) -> Any:
        """The active storage pool serving *loc*: an existing pool with the same target (any
        name), else ``dir_<path>`` (``nfs_...``, the VG name), defined, built and started
        when missing (None when missing and not *create*). "already exists" answers from
        racing creators are tolerated. Raises PermanentError for ``phy:`` locations."""
        lv = self.lv
        if loc.kind == "phy":
            raise PermanentError("mkvm management of block device storage not implemented")
        pool = self._pools.get(loc.url)
        if pool is None:
            for candidate in self.conn.listAllStoragePools(0):
                try:
                    if loc.matches_pool(candidate.XMLDesc(0)):
                        pool = candidate
                        break
                except lv.libvirtError:
                    continue
        if pool is None:
            try:
                pool = self.conn.storagePoolLookupByName(loc.pool_name)
            except lv.libvirtError as exc:
                if exc.get_error_code() != lv.VIR_ERR_NO_STORAGE_POOL:
                    raise
                if not create:
                    return None
                pool = self._define_pool(loc)
        if not pool.isActive():
            try:
                pool.create(0)
            except lv.libvirtError as exc:
                if exc.get_error_code() != lv.VIR_ERR_OPERATION_INVALID:  # already active
                    raise
        else:
            try:
                pool.refresh(0)  # see volumes made behind libvirt's back (or by another host)
            except lv.libvirtError:
                pass
        self._pools[loc.url] = pool
        return pool

    def _define_pool(self, loc: Location) -> Any:
        lv = self.lv
        try:
            pool = self.conn.storagePoolDefineXML(
                loc.pool_xml(self._drv.endpoint.option("pools_dir") or "/var/lib/nodemgr/pools"), 0)
        except lv.libvirtError as exc:
            if "already exists" not in reason(exc):
                raise
            pool = self.conn.storagePoolLookupByName(loc.pool_name)
        if loc.kind != "lvm" or loc.devices:  # a logical pool is only built from given PVs
            try:
                pool.build(0)
            except lv.libvirtError as exc:
                if "exist" not in reason(exc).lower():
                    raise
        try:
            pool.setAutostart(1)
        except lv.libvirtError:
            pass
        return pool

    def vol_in_pool(self, pool: Any, name: str) -> Any:
        """Volume *name* of *pool*, or None."""
        try:
            return pool.storageVolLookupByName(name)
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise

    def vol_by_path(self, path: str) -> Any:
        """The storage volume at *path*, or None. Tries the directory's pool too (activated
        and refreshed) before giving up."""
        lv = self.lv
        try:
            return self.conn.storageVolLookupByPath(path)
        except lv.libvirtError as exc:
            if exc.get_error_code() != lv.VIR_ERR_NO_STORAGE_VOL:
                raise
        directory, _, base = path.rpartition("/")
        if not directory:
            return None
        try:
            pool = self.pool_for(parse_location("dir://" + directory), create=False)
        except (DriverError, lv.libvirtError):
            return None
        return self.vol_in_pool(pool, base) if pool is not None else None

    def capacity_mib(self, path: str | None) -> int | None:
        """Virtual size in MiB of the volume at *path*, or None when it is not a volume."""
        if not path:
            return None
        try:
            vol = self.vol_by_path(path)
            return vol.info()[1] // MiB if vol is not None else None
        except self.lv.libvirtError:
            return None

    def delete_volume(self, path: str) -> str | None:
        """Delete the volume at *path*, retried (:func:`~nodemgr.plugins.base.retry`,
        :data:`PURGE_RETRIES` tries :data:`PURGE_DELAY_S` s apart: libvirt's delete right
        after a destroy is flaky, xCAT #455). Returns an error line, or None when it is
        gone or was never there."""
        lv = self.lv

        def attempt() -> None:
            vol = self.vol_by_path(path)
            if vol is None:
                return
            try:
                vol.info()  # xCAT: without a get_info first, delete sometimes fails
                vol.delete(0)
            except lv.libvirtError as exc:
                raise Transient(reason(exc)) from exc
            try:
                self.conn.storageVolLookupByPath(path)
            except lv.libvirtError:
                return
            raise Transient("volume still present")

        try:
            retry(attempt, schedule=(PURGE_DELAY_S,) * (PURGE_RETRIES - 1))
        except Transient as exc:
            return f"Unable to purge {path}: {exc}"
        return None

    def cleanup(self, vols: list[Any]) -> None:
        """Delete *vols* (made by a call that failed); never raises."""
        for vol in vols:
            try:
                vol.delete(0)
            except Exception:  # noqa: BLE001 - best effort on an error path
                pass

    def upload(self, pool: Any, name: str, data: bytes) -> Any:
        """Volume *name* in *pool* holding *data* (raw), replacing an old one, written
        through a libvirt stream (so a remote host works too). Returns the volume."""
        old = self.vol_in_pool(pool, name)
        if old is not None:
            old.delete(0)
        vol = pool.createXML(volume_xml(name, len(data), "raw"), 0)
        try:
            stream = self.conn.newStream(0)
            vol.upload(stream, 0, len(data), 0)
            for i in range(0, len(data), UPLOAD_CHUNK):
                stream.send(data[i:i + UPLOAD_CHUNK])
            stream.finish()
        except BaseException:
            self.cleanup([vol])
            raise
        return vol

    def cdrom_path(self, spec: str) -> str:
        """The image path for ``chvm`` cdrom *spec*: ``/abs/path.iso`` as is;
        ``nfs://host/dir/img.iso`` / ``dir:///dir/img.iso`` via the pool of the directory.
        Raises PermanentError for a device or a relative path."""
        if "://" in spec:
            url, _, image = spec.rpartition("/")
            pool = self.pool_for(parse_location(url))
            return pool_target_path(pool.XMLDesc(0)).rstrip("/") + "/" + image
        if spec.startswith("/dev/"):
            raise PermanentError("cdrom device pass-through is not supported")
        if spec.startswith("/"):
            return spec
        raise PermanentError(f"Unable to understand cd path specification {spec}")
