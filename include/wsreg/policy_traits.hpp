// wsreg/policy_traits.hpp: compile-time check of the registry Policy requirements.
#ifndef WSREG_POLICY_TRAITS_HPP
#define WSREG_POLICY_TRAITS_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "wsreg/payload.hpp"
#include "wsreg/presence.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// One trait per valid expression of docs/concepts/policy.md, so that a
/// static_assert can name the one that is missing. `P` is the policy rebound
/// to the registry's data type `D`; `p` is a P lvalue.
namespace policy_requirements {

// Defines `name<P, D>`: true when `expression` (which may use p, id, topic,
// payload and data) is well-formed and, unless Result is void, converts to
// Result.
#define WSREG_POLICY_REQUIREMENT(name, Result, expression)                                   \
  template <class P, class D, class = void>                                                  \
  struct name : std::false_type {};                                                          \
  template <class P, class D>                                                                \
  struct name<P, D, std::void_t<decltype(expression)>>                                       \
      : std::bool_constant<std::is_void_v<Result> ||                                         \
                           std::is_convertible_v<decltype(expression), Result>> {};

#define WSREG_P std::declval<P&>()
#define WSREG_ID ConnectionId{}
#define WSREG_TOPIC std::declval<std::string>()

WSREG_POLICY_REQUIREMENT(has_insert, void,
                         WSREG_P.insert(WSREG_ID, std::declval<std::shared_ptr<Sender>>(),
                                        std::declval<D>()))
WSREG_POLICY_REQUIREMENT(has_erase, void, WSREG_P.erase(WSREG_ID))
WSREG_POLICY_REQUIREMENT(has_send, void, WSREG_P.send(WSREG_ID, std::declval<Payload>()))
WSREG_POLICY_REQUIREMENT(has_broadcast, void,
                         WSREG_P.broadcast(std::declval<Payload>(), WSREG_ID))
WSREG_POLICY_REQUIREMENT(has_publish, void,
                         WSREG_P.publish(WSREG_TOPIC, std::declval<Payload>(), WSREG_ID))
WSREG_POLICY_REQUIREMENT(has_subscribe, void, WSREG_P.subscribe(WSREG_ID, WSREG_TOPIC))
WSREG_POLICY_REQUIREMENT(has_unsubscribe, void, WSREG_P.unsubscribe(WSREG_ID, WSREG_TOPIC))
WSREG_POLICY_REQUIREMENT(has_topics_of, std::vector<std::string>, WSREG_P.topics_of(WSREG_ID))
WSREG_POLICY_REQUIREMENT(has_subscribers, std::vector<ConnectionId>,
                         WSREG_P.subscribers(std::declval<const std::string&>()))
WSREG_POLICY_REQUIREMENT(has_subscriber_count, std::size_t,
                         WSREG_P.subscriber_count(std::declval<const std::string&>()))
WSREG_POLICY_REQUIREMENT(has_topic_count, std::size_t, WSREG_P.topic_count())
WSREG_POLICY_REQUIREMENT(has_set_presence_handler, void,
                         WSREG_P.set_presence_handler(std::declval<PresenceHandler<D>>()))
WSREG_POLICY_REQUIREMENT(has_data, std::optional<D>, WSREG_P.data(WSREG_ID))
WSREG_POLICY_REQUIREMENT(has_set_data, void, WSREG_P.set_data(WSREG_ID, std::declval<D>()))
WSREG_POLICY_REQUIREMENT(has_update_data, void,
                         WSREG_P.update_data(WSREG_ID, std::declval<std::function<void(D&)>>()))
WSREG_POLICY_REQUIREMENT(has_size, std::size_t, WSREG_P.size())
WSREG_POLICY_REQUIREMENT(has_stats, RegistryStats, WSREG_P.stats())
WSREG_POLICY_REQUIREMENT(has_size_approx, std::size_t, WSREG_P.size_approx())
WSREG_POLICY_REQUIREMENT(has_stats_approx, RegistryStats, WSREG_P.stats_approx())
WSREG_POLICY_REQUIREMENT(has_flush, void, WSREG_P.flush())

/// True when P can be built from the registry's options, as
/// ConnectionRegistry(RegistryOptions) does. Not part of is_registry_policy:
/// only that constructor needs it, so a policy without it still works with
/// the default constructor.
template <class P>
struct has_options_constructor : std::is_constructible<P, const RegistryOptions&> {};

#undef WSREG_TOPIC
#undef WSREG_ID
#undef WSREG_P
#undef WSREG_POLICY_REQUIREMENT

}  // namespace policy_requirements

/// True when P (a policy already rebound to data type D) meets every
/// requirement of a registry policy (docs/concepts/policy.md). Usable in
/// static_assert and enable_if.
template <class P, class D = std::monostate>
struct is_registry_policy
    : std::bool_constant<
          std::is_default_constructible_v<P> && policy_requirements::has_insert<P, D>::value &&
          policy_requirements::has_erase<P, D>::value &&
          policy_requirements::has_send<P, D>::value &&
          policy_requirements::has_broadcast<P, D>::value &&
          policy_requirements::has_publish<P, D>::value &&
          policy_requirements::has_subscribe<P, D>::value &&
          policy_requirements::has_unsubscribe<P, D>::value &&
          policy_requirements::has_topics_of<P, D>::value &&
          policy_requirements::has_subscribers<P, D>::value &&
          policy_requirements::has_subscriber_count<P, D>::value &&
          policy_requirements::has_topic_count<P, D>::value &&
          policy_requirements::has_set_presence_handler<P, D>::value &&
          policy_requirements::has_data<P, D>::value &&
          policy_requirements::has_set_data<P, D>::value &&
          policy_requirements::has_update_data<P, D>::value &&
          policy_requirements::has_size<P, D>::value &&
          policy_requirements::has_stats<P, D>::value &&
          policy_requirements::has_size_approx<P, D>::value &&
          policy_requirements::has_stats_approx<P, D>::value &&
          policy_requirements::has_flush<P, D>::value> {};

template <class P, class D = std::monostate>
inline constexpr bool is_registry_policy_v = is_registry_policy<P, D>::value;

namespace detail {

/// Fails compilation with one message per unmet requirement. Instantiated by
/// ConnectionRegistry<Policy, D> with P = Policy::rebind<D>; evaluates to
/// true when P is a policy.
template <class P, class D>
constexpr bool check_policy() {
  using namespace policy_requirements;
  static_assert(std::is_default_constructible_v<P>,
                "wsreg: Policy requirements not met: P must be default-constructible");
  static_assert(has_insert<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.insert(ConnectionId, std::shared_ptr<Sender>, Data)");
  static_assert(has_erase<P, D>::value,
                "wsreg: Policy requirements not met: missing p.erase(ConnectionId)");
  static_assert(has_send<P, D>::value,
                "wsreg: Policy requirements not met: missing p.send(ConnectionId, Payload)");
  static_assert(has_broadcast<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.broadcast(Payload, ConnectionId except)");
  static_assert(has_publish<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.publish(std::string topic, Payload, ConnectionId except)");
  static_assert(has_subscribe<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.subscribe(ConnectionId, std::string topic)");
  static_assert(has_unsubscribe<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.unsubscribe(ConnectionId, std::string topic)");
  static_assert(has_topics_of<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.topics_of(ConnectionId) -> std::vector<std::string>");
  static_assert(has_subscribers<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.subscribers(const std::string&) -> std::vector<ConnectionId>");
  static_assert(has_subscriber_count<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.subscriber_count(const std::string&) -> std::size_t");
  static_assert(has_topic_count<P, D>::value,
                "wsreg: Policy requirements not met: missing p.topic_count() -> std::size_t");
  static_assert(has_set_presence_handler<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.set_presence_handler(PresenceHandler<Data>)");
  static_assert(has_data<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.data(ConnectionId) -> std::optional<Data>");
  static_assert(has_set_data<P, D>::value,
                "wsreg: Policy requirements not met: missing p.set_data(ConnectionId, Data)");
  static_assert(has_update_data<P, D>::value,
                "wsreg: Policy requirements not met: missing "
                "p.update_data(ConnectionId, std::function<void(Data&)>)");
  static_assert(has_size<P, D>::value,
                "wsreg: Policy requirements not met: missing p.size() -> std::size_t");
  static_assert(has_stats<P, D>::value,
                "wsreg: Policy requirements not met: missing p.stats() -> RegistryStats");
  static_assert(has_size_approx<P, D>::value,
                "wsreg: Policy requirements not met: missing p.size_approx() -> std::size_t");
  static_assert(has_stats_approx<P, D>::value,
                "wsreg: Policy requirements not met: missing p.stats_approx() -> RegistryStats");
  static_assert(has_flush<P, D>::value, "wsreg: Policy requirements not met: missing p.flush()");
  return true;
}

}  // namespace detail
}  // namespace wsreg

#endif  // WSREG_POLICY_TRAITS_HPP
