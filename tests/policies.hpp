// tests/policies.hpp: the one list of policies every registry test runs over.
#ifndef WSREG_TESTS_POLICIES_HPP
#define WSREG_TESTS_POLICIES_HPP

#include <cstddef>
#include <tuple>
#include <type_traits>

#include "wsreg/actor_policy.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/sharded_policy.hpp"

namespace wsreg_test {
/// Every registry-level test (test_registry, test_topics, test_allocations)
/// runs over these: the two base policies and two shardings of them (an odd
/// shard count, so that the reduction to [0, N) is not a power of two).
using registry_policies =
    std::tuple<wsreg::ActorPolicy, wsreg::MutexPolicy, wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>,
               wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>>;

/// The policies that apply each operation all in one place (one actor, or
/// one mutex): what the all-or-nothing exception tests need, since a
/// ShardedPolicy broadcast is all-or-nothing per shard only
/// (wsreg/sharded_policy.hpp, "Exception safety").
using unsharded_policies = std::tuple<wsreg::ActorPolicy, wsreg::MutexPolicy>;

/// The transport tests (tests over wsreg::wspp::Server) run over the two base
/// policies only: a policy changes nothing the transport sees that the
/// registry tests do not cover, and each server case costs seconds.
/// test_websocketpp_server adds one sharded case.
using server_policies = unsharded_policies;

/// Whether P is a ShardedPolicy, and its inner policy (P itself otherwise).
template <class P>
struct sharding {
  static constexpr bool sharded = false;
  static constexpr std::size_t shards = 1;
  using inner = P;
};
template <class Inner, std::size_t N, class D>
struct sharding<wsreg::ShardedPolicy<Inner, N, D>> {
  static constexpr bool sharded = true;
  static constexpr std::size_t shards = N;
  using inner = Inner;
};
template <class P>
inline constexpr bool sharded_v = sharding<P>::sharded;

/// Whether P applies operations later, on actor threads (ActorPolicy, alone
/// or as shards), rather than on the caller's thread.
template <class P>
inline constexpr bool applies_later_v = std::is_same_v<typename sharding<P>::inner, wsreg::ActorPolicy>;

/// Whether P is ActorPolicy itself: one actor thread applies everything, in
/// one total order.
template <class P>
inline constexpr bool single_actor_v = std::is_same_v<P, wsreg::ActorPolicy>;

/// Whether two ids are owned by the same shard (always, for an unsharded
/// policy): the same actor thread or mutex serves them.
template <class P>
bool same_shard(wsreg::ConnectionId a, wsreg::ConnectionId b) {
  if constexpr (sharded_v<P>) {
    return P::shard_of(a) == P::shard_of(b);
  } else {
    return true;
  }
}

/// The name of a policy in registry_policies, for test output.
template <class Policy>
const char* policy_name() {
  if constexpr (std::is_same_v<Policy, wsreg::ActorPolicy>) return "ActorPolicy";
  if constexpr (std::is_same_v<Policy, wsreg::MutexPolicy>) return "MutexPolicy";
  if constexpr (std::is_same_v<Policy, wsreg::ShardedPolicy<wsreg::ActorPolicy, 4>>) {
    return "ShardedPolicy<ActorPolicy, 4>";
  }
  if constexpr (std::is_same_v<Policy, wsreg::ShardedPolicy<wsreg::MutexPolicy, 3>>) {
    return "ShardedPolicy<MutexPolicy, 3>";
  }
  return "a policy";
}
}

#endif
