"""The sink on the clouds' message buses: AMQP 0-9-1 (OpenStack notifications, CloudStack's event bus)."""
