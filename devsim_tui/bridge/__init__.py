"""Bridges between a World and the outside: MQTT telemetry out and commands in (docs/mqtt.md).

Importing this package is cheap and offline: the MQTT client library is imported only when a
bridge actually connects, so a run without `--mqtt` never loads network code.
"""

from devsim_tui.bridge.options import (
    MqttOptions, add_mqtt_arguments, build_options, default_sim_id, options_from_args,
    parse_mqtt_url,
)

__all__ = ["MqttBridge", "LinkState", "MqttOptions", "add_mqtt_arguments", "build_options",
           "default_sim_id", "options_from_args", "parse_mqtt_url"]


def __getattr__(name: str):
    # MqttBridge / LinkState live in bridge.mqtt; resolve them lazily to keep this import light.
    if name in ("MqttBridge", "LinkState"):
        from devsim_tui.bridge import mqtt

        return getattr(mqtt, name)
    raise AttributeError(name)
