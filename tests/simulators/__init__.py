"""Simulators of systems that cannot run on the test machine (an oVirt engine), each with
tests of its fidelity against real recordings. Test code only: never imported by nodemgr."""
