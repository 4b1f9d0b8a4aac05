"""store_description: the layout as RViz and tf2 see it — /robot_description, /tf_static, markers.

Everything is published once on transient-local topics (depth 1), so RViz or any tf2 listener that
starts later still gets it; the URDF, the transforms and the markers all come from the same layout
(storefuse_core.urdf), so an installer comparing RViz with the shop floor checks the layout itself.
"""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from storefuse_core.layout import load_store
from storefuse_core.store_markers import marker_array, tf_static
from storefuse_core.urdf import store_urdf
from storefuse_nodes.common import MSG, OK, Diagnostics, run

# What late joiners must see (REP-2003-style latching): /tf_static and /robot_description use it too.
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
MARKERS = "markers"     # relative: /<namespace>/markers


class StoreDescriptionNode(Node):
    def __init__(self):
        super().__init__("store_description")
        store = load_store(self.declare_parameter("store", "minimart").value)
        urdf_pub = self.create_publisher(String, "/robot_description", LATCHED_QOS)
        tf_pub = self.create_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        marker_pub = self.create_publisher(MarkerArray, MARKERS, LATCHED_QOS)
        transforms = tf_static(MSG, store)
        markers = marker_array(MSG, store)
        urdf_pub.publish(String(data=store_urdf(store)))
        tf_pub.publish(transforms)
        marker_pub.publish(markers)
        self.diag = Diagnostics(self, f"storefuse/store_description/{store.name}", store.name)
        self.diag.set(OK, "published", store=store.name, frames=len(transforms.transforms) + 1,
                      plates=len(store.plates), cameras=len(store.cameras), gates=len(store.gates),
                      markers=len(markers.markers) - 1)
        self.get_logger().info(f"store {store.name}: {len(transforms.transforms)} static transforms, "
                               f"{len(markers.markers) - 1} markers on {marker_pub.topic_name}")


def main(args=None):
    run(StoreDescriptionNode, args)
