"""Framework integrations. Each module (or package) here imports its framework; nothing else in
tokentrail does. They use only the tracker's public capture surface
(:class:`tokentrail.protocols.CaptureTarget`) and never import ``tokentrail.tracker``."""
