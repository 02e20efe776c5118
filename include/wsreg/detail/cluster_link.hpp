// wsreg/detail/cluster_link.hpp: what a ConnectionRegistry forwards to when it is a cluster node.
#ifndef WSREG_DETAIL_CLUSTER_LINK_HPP
#define WSREG_DETAIL_CLUSTER_LINK_HPP

#include <string>
#include <string_view>

#include "wsreg/payload.hpp"
#include "wsreg/sender.hpp"

namespace wsreg::detail {

/// The registry's side of a Cluster (wsreg/cluster.hpp), type-erased so
/// that ConnectionRegistry names no backplane: a registry without a cluster
/// pays one relaxed pointer load per broadcast, publish and send.
///
/// Thread safety: every member may be called from any thread at once
/// (the registry calls them from its callers' threads and, for
/// topic_changed, from the thread that runs presence events). None throws.
class ClusterLink {
 public:
  /// Sends a broadcast made on this node to the other nodes.
  virtual void broadcast(const Payload& payload, ConnectionId except) noexcept = 0;
  /// Sends a publish made on this node to the other nodes subscribed to `topic`.
  virtual void publish(std::string_view topic, const Payload& payload,
                       ConnectionId except) noexcept = 0;
  /// Routes a send to `id`, whose node (node_of(id)) is not this one.
  virtual void send(ConnectionId id, const Payload& payload) noexcept = 0;
  /// A connection of this node joined (`joined`) or left `topic`.
  virtual void topic_changed(std::string_view topic, bool joined) noexcept = 0;
  /// Appends the cluster's Prometheus metrics to `out`.
  virtual void append_metrics(std::string& out) const = 0;

 protected:
  ClusterLink() = default;
  ClusterLink(const ClusterLink&) = default;
  ClusterLink& operator=(const ClusterLink&) = default;
  ~ClusterLink() = default;
};

}  // namespace wsreg::detail

#endif  // WSREG_DETAIL_CLUSTER_LINK_HPP
