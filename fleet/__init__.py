"""The fleet server: ingest votes over MQTT into one store, score them, push configuration to terminals."""
