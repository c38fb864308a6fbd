"""The tests' certificate authority (made on the spot, see sim/testca.py)."""

from sim.testca import ServerCert, TestCA

__all__ = ["ServerCert", "TestCA"]
