"""Many rooms: a hub that publishes each room's desired state over MQTT, and room agents that show it.

protocol.py is the wire (topics, bounded messages, the agent's "apply if newer" rule), pure;
routing.py decides which rooms a signal goes to (levels, quiet hours, people and presence), pure.
The hub and the agent that do the I/O are lamplighter.service.hub and lamplighter.service.agent.
"""
