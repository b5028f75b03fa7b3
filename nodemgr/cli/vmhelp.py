"""The usage text of the VM commands (``--help``, and through help2man their man pages):
what each command does, its units, its output and examples. Options are described where
they are declared (``nodemgr.cli.vmcmds``); what a family cannot do is added from the
drivers' traits when help is asked for."""

EXIT = """
exit status:
  0  every node succeeded
  1  a node failed (its line on stderr reads "node: Error: ..."), or the command
     was refused (bad noderange, bad option, policy)
"""

RPOWER_HELP = """\
Control the power of virtual machines.

  on        start the VM (already on: prints "on")
  off       hard power off
  softoff   ask the guest to shut down (ACPI); prints the state at that moment
  reset     hard reset; prints "reset"
  boot      off -> "off on"; on -> "on reset"
  suspend   pause the VM -> "suspended";  resume -> "on"
  stat      print the power state: on, off, suspended (also: state, status)

Output is one line per node, "node: <state>", in noderange order. on/off/boot/reset set
nodelist.status to powering-on / powering-off for nodes whose state changed.
The driver comes from nodehm.power, else nodehm.mgt; the hypervisor from vm.host (vm.mgr
for families reached through a manager). A VM with no vm.host is reported "off" by stat;
"on" of one with vm.migrationdest places it on the host with the most free memory. A
crashed VM kept by its hypervisor is destroyed and started again by "on".

A hypervisor or manager node (no vm.host, and a hypervisor row or hostconn.uri) is not
a VM: stat connects to it and prints "on" when it answers (a host reached through its
manager: its state there, e.g. maintenance), else its one-line error; other actions are
refused.

examples:
  rpower vm1,vm2 stat
  rpower 'vm[01-20]' boot
  rpower compute,-vm5 off --json
""" + EXIT

MKVM_HELP = """\
Create virtual machines from their table definitions.

Reads vm.host, vm.memory (MiB), vm.cpus, vm.nics, vm.nicmodel, vm.storage,
vm.storagemodel, vm.storageformat, vm.bootorder, mac.mac and vpd.uuid. Missing MACs and
UUIDs are generated and written to the mac and vpd tables (a family whose manager
assigns them reports them instead); the domain definition is kept in kvm_nodedata.
Domains are persistent (defined on the hypervisor). A VM without vm.host goes to the host
of vm.migrationdest with the most free memory, written to vm.host.

Sizes: bare numbers are GiB for -s, MiB for --mem; suffixes K, M, G, T accepted
(20, 20G, 20480M). --bootparams keys: ip (address/prefix or dhcp: how the VM's address
is set), gateway, dns, hostname, any other key; kept in the vmbootparams table and given
to the guest on a small config disk at first boot.

Silent on success (like xCAT).

examples:
  mkvm vm1 -s 20G
  mkvm 'vm[1-4]' -s 10G,2G --mem 2048 --cpus 2
  mkvm web1 --bootparams ip=10.0.0.5/24 gateway=10.0.0.1 dns=10.0.0.1 role=web
""" + EXIT

RMVM_HELP = """\
Remove virtual machines from their hypervisors.

A running VM is refused unless -f is given. The node's definition in the tables is kept;
its stored domain definition (kvm_nodedata) is dropped. -p deletes disk volumes, not
cdroms, raw-format images or block devices; the VM's own boot-parameter disk
(<node>.cidata.iso) goes with it.

Silent on success.

examples:
  rmvm vm1
  rmvm vm1,vm2 -f -p
""" + EXIT

CHVM_HELP = """\
Change virtual machines.

Sizes: bare numbers are GiB for -a and --resize, MiB for --mem. --cpus needs the VM off;
--mem is applied live when the VM runs, up to its maximum. qcow2 disks cannot shrink.

With no option, the table settings (vm.memory, vm.cpus, ...) are pushed to the VM, as
xCAT's chvm does for engine-managed VMs.

examples:
  chvm vm1 -a 10G
  chvm vm1 -d vdb                 # detach; the volume stays (rmvm -p does not delete it)
  chvm vm1 --resize vda=30G
  chvm vm1 --cpus 4 --mem 8G
  chvm vm1 --cdrom /install/iso/rhel9.iso
""" + EXIT

LSVM_HELP = """\
List virtual machines.

For a hypervisor node: every VM defined on it, running or not, one line each,
"host: vmname: state". For a manager node (the node VMs name in vm.mgr): every VM it
manages, the same way. For a VM node: its details (Id, Host, OS, Memory, CPU, State,
disks), one "node: key: value" line each.

A node is taken as a hypervisor or manager when it has no vm.host (or vm.mgr) and has a
hypervisor row or a hostconn.uri. Its driver: nodehm.power/nodehm.mgt, else that of
hypervisor.type, else that of the VMs naming it in vm.mgr.

examples:
  lsvm kvmhost1
  lsvm -a kvmhost1              # with uuid, memory, cpus, MACs and disks of each VM
  lsvm engine1                  # every VM of that manager
  lsvm vm1,vm2
""" + EXIT

RMIGRATE_HELP = """\
Live-migrate virtual machines to another hypervisor.

The target is the given hypervisor node, else the host in vm.migrationdest (a noderange)
with the most free memory, skipping the current host and unreachable ones; for a VM whose
manager places VMs itself, with neither, the manager chooses the host. vm.host is changed
only after the VM is verified running on the target. Migrations run one at a time, as
xCAT does. Shared storage (or diskless guests) is a prerequisite.

examples:
  rmigrate vm1 kvmhost2
  rmigrate 'vm[1-4]'            # choose from vm.migrationdest
""" + EXIT

REVACUATE_HELP = """\
Empty hypervisors for maintenance: live-migrate every running VM off each host.

Each VM goes to the host of its vm.migrationdest with the most free memory that has room
for it (what this run already sent there counts); a manager that places VMs itself
chooses when vm.migrationdest is unset. One line per VM ("vm: migrated to host2" or its
error), then one per host: "host: no running VM", or "host: Error: still running: vm
(why)". Stopped VMs stay defined where they are.

examples:
  revacuate kvmhost1
  revacuate 'kvmhost[1-2]' --json
""" + EXIT

CLONEVM_HELP = """\
Make a master from a VM, or VMs from a master.

-t MASTER makes master MASTER from the (single, normally powered-off) VM: its disks are
copied to <MASTER>.<dev>.<fmt>; unless -d, the VM is rebased onto the copies and
vm.master is set. Writes the vmmaster and kvm_masterdata rows.
-b MASTER creates each VM from master MASTER: qcow2 disks backed by the master's (thin),
or full copies with -d; new MACs and UUIDs; sets vm.master (thin only). A VM without
vm.nics / vm.storage takes the master's; a VM, vm.memory and vm.cpus unset, keeps the
master's size.

examples:
  clonevm vm1 -t rhel9-gold
  clonevm 'vm[10-19]' -b rhel9-gold
""" + EXIT

RVITALS_HELP = """\
Show the use of virtual machines: CPU (% over the interval, 100 = one vCPU busy),
memory used / available (MiB), disk and network I/O rates (bytes/s).

Items: cpu, mem, disk, net, all (default). A figure the VM's family cannot give is said
on its line; a node that gave none of the asked figures fails (exit 1).

examples:
  rvitals vm1
  rvitals 'vm[1-4]' cpu mem --interval 5
""" + EXIT

RINV_HELP = """\
Show the inventory of virtual machines: UUID, CPUs, memory (MiB), disks (size in MiB,
image), NICs (MAC, network, model) and IP addresses with where each was found (agent:
the guest agent; lease: the host's DHCP server; arp: the host's neighbour table;
bootparams: the address the VM was given; engine: its manager).

Items: uuid, cpu, mem, disk, nic, ip, all (default).

examples:
  rinv vm1
  rinv 'vm[1-4]' ip
""" + EXIT

RSETBOOT_HELP = """\
Set the next boot device of virtual machines: net (network, PXE: how a VM gets
installed by nodeset), hd, cd, or default (vm.bootorder). Takes effect from the next
start; the stored definition is updated. Prints the device set.

examples:
  rsetboot vm1 net && rpower vm1 boot
  rsetboot 'vm[1-4]' default
""" + EXIT

GETCONS_HELP = """\
Print how to reach each VM's console: "method: serial" and the command that opens it by
hand, or for a VM with a remote display only, its VNC/SPICE server, port and one-time
password (as getrvidparms).

examples:
  getcons vm1
""" + EXIT

GETRVIDPARMS_HELP = """\
Print the remote display (VNC or SPICE) parameters of VMs: method, server, vidport and a
one-time password where the family issues one. A VM whose family has only a serial
console fails with the command for it.

examples:
  getrvidparms vm1
""" + EXIT

RCONS_HELP = """\
Open the serial console of one VM. On a terminal, keystrokes go to the guest until the
escape sequence Ctrl-E c . (xCAT's conserver escape) or Ctrl-]; otherwise standard input
is sent to the guest and what it prints is copied to standard output until the console
closes or --timeout seconds pass without output.

examples:
  rcons vm1
  rcons vm1 --timeout 10 < /dev/null > vm1-boot.log
""" + EXIT

RSCAN_HELP = """\
List the VMs on hypervisors or managers, and adopt them as nodes.

Prints xCAT's table per host: type name hypervisor id cpu memory nic disk (memory in
MiB, id the VM's UUID). -w writes a node definition (nodelist groups=vm,all,
nodehm.mgt, vm.host or vm.mgr, vm.memory, vm.cpus, mac.mac, vpd.uuid) for every VM
that is not a node yet; a VM already defined on this host is left alone unless -u; a
VM whose name is a node of another host is an error line and is not written.

examples:
  rscan kvmhost1
  rscan kvmhost1 -w
  rscan engine1 -z > vms.stanza     # lsdef -z form, for mkdef -z
""" + EXIT


def families(command: str) -> str:
    """``hypervisor families:`` lines for --help: each built-in driver's label and whether
    it can run *command* (and why not), read from the registry's traits. A site's own
    driver answers for itself on its nodes (its ``Traits.cannot``)."""
    from nodemgr.plugins import registry

    lines, seen = [], set()
    for name in registry.BUILTIN:  # not every entry point: scanning costs ~35 ms of start-up
        try:
            tr = registry.traits(name)
        except Exception:  # noqa: BLE001 - a broken site plugin must not break --help
            continue
        if not tr.label or tr.label in seen:
            continue
        seen.add(tr.label)
        why = tr.why_not(command)
        lines.append(f"  {name:9} {tr.label}: {'no - ' + why if why else 'yes'}")
    return "\nhypervisor families (nodehm.mgt):\n" + "\n".join(lines) + "\n" if lines else ""
