"""Cell drivers: one module per protocol behind the one :class:`drivers.base.Driver` ABC."""
