"""Topic names (under the store namespace, /store by default) and their message types."""
NS = "/store"
GATE_EVENTS = f"{NS}/gates/events"
GATE_WATERMARK = f"{NS}/gates/watermark"
PLATE_WEIGHTS = f"{NS}/shelves/weights"
SHELF_EVENTS = f"{NS}/shelves/events"
SHELF_WATERMARK = f"{NS}/shelves/watermark"
RECEIPTS_LIVE = f"{NS}/receipts/live"
RECEIPTS_FINAL = f"{NS}/receipts/final"

IFACE = "storefuse_interfaces/msg/"
TYPES = {
    GATE_EVENTS: IFACE + "GateEvent",
    GATE_WATERMARK: IFACE + "Watermark",
    PLATE_WEIGHTS: IFACE + "PlateWeights",
    SHELF_EVENTS: IFACE + "ShelfEvent",
    SHELF_WATERMARK: IFACE + "Watermark",
    RECEIPTS_LIVE: IFACE + "Receipt",
    RECEIPTS_FINAL: IFACE + "Receipt",
}
# What the sensors themselves produce: enough for an offline replay to recompute everything else.
RAW_TYPES = {t: TYPES[t] for t in (GATE_EVENTS, GATE_WATERMARK, PLATE_WEIGHTS)}


def relative(topic: str) -> str:
    """The name a node uses, relative to its namespace (so two stores can share a DDS domain)."""
    return topic.removeprefix(NS + "/")

SIM_STATUS = f"{NS}/sim/status"            # std_msgs/String JSON, transient local
# Each scale driver's effective detector settings (std_msgs/String JSON, transient local): a bag
# carries them so an offline replay runs the detector exactly as the live driver did.
SHELF_CONFIG = f"{NS}/shelves/config"
TYPES[SHELF_CONFIG] = "std_msgs/msg/String"
LATCHED: set[str] = {SHELF_CONFIG}


def cart_topic(cart_id: str, leaf: str) -> str:
    """/store/carts/<cart>/{uwb,odom,events}."""
    return f"{NS}/carts/{cart_id}/{leaf}"


CART_TYPES = {"uwb": IFACE + "UwbRanges", "odom": "nav_msgs/msg/Odometry", "events": IFACE + "CartEvent"}


def camera_topic(camera_id: str, leaf: str = "detections") -> str:
    """/store/cameras/<cam>/detections (PersonDetections), .../products (ProductViews: items seen in
    shoppers' hands) or .../image/compressed (opt-in)."""
    return f"{NS}/cameras/{camera_id}/{leaf}"


DETECTIONS_TYPE = IFACE + "PersonDetections"
PRODUCTS_TYPE = IFACE + "ProductViews"
IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
