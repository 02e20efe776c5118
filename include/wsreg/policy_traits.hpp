// wsreg/policy_traits.hpp: compile-time check of the registry Policy requirements.
#ifndef WSREG_POLICY_TRAITS_HPP
#define WSREG_POLICY_TRAITS_HPP

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "wsreg/payload.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"

namespace wsreg {

/// One trait per valid expression of docs/concepts/policy.md, so that a
/// static_assert can name the one that is missing. `p` is a P lvalue.
namespace policy_requirements {

template <class P, class = void>
struct has_insert : std::false_type {};
template <class P>
struct has_insert<P, std::void_t<decltype(std::declval<P&>().insert(
                         ConnectionId{}, std::declval<std::shared_ptr<Sender>>()))>>
    : std::true_type {};

template <class P, class = void>
struct has_erase : std::false_type {};
template <class P>
struct has_erase<P, std::void_t<decltype(std::declval<P&>().erase(ConnectionId{}))>>
    : std::true_type {};

template <class P, class = void>
struct has_send : std::false_type {};
template <class P>
struct has_send<P, std::void_t<decltype(std::declval<P&>().send(ConnectionId{},
                                                                 std::declval<Payload>()))>>
    : std::true_type {};

template <class P, class = void>
struct has_broadcast : std::false_type {};
template <class P>
struct has_broadcast<P, std::void_t<decltype(std::declval<P&>().broadcast(
                            std::declval<Payload>(), ConnectionId{}))>> : std::true_type {};

template <class P, class = void>
struct has_size : std::false_type {};
template <class P>
struct has_size<P, std::enable_if_t<std::is_convertible_v<
                       decltype(std::declval<P&>().size()), std::size_t>>> : std::true_type {};

template <class P, class = void>
struct has_stats : std::false_type {};
template <class P>
struct has_stats<P, std::enable_if_t<std::is_convertible_v<
                        decltype(std::declval<P&>().stats()), RegistryStats>>>
    : std::true_type {};

template <class P, class = void>
struct has_size_approx : std::false_type {};
template <class P>
struct has_size_approx<P, std::enable_if_t<std::is_convertible_v<
                              decltype(std::declval<P&>().size_approx()), std::size_t>>>
    : std::true_type {};

template <class P, class = void>
struct has_stats_approx : std::false_type {};
template <class P>
struct has_stats_approx<P, std::enable_if_t<std::is_convertible_v<
                               decltype(std::declval<P&>().stats_approx()), RegistryStats>>>
    : std::true_type {};

template <class P, class = void>
struct has_flush : std::false_type {};
template <class P>
struct has_flush<P, std::void_t<decltype(std::declval<P&>().flush())>> : std::true_type {};

}  // namespace policy_requirements

/// True when P meets every requirement of a registry policy
/// (docs/concepts/policy.md). Usable in static_assert and enable_if.
template <class P>
struct is_registry_policy
    : std::bool_constant<
          std::is_default_constructible_v<P> && policy_requirements::has_insert<P>::value &&
          policy_requirements::has_erase<P>::value && policy_requirements::has_send<P>::value &&
          policy_requirements::has_broadcast<P>::value &&
          policy_requirements::has_size<P>::value && policy_requirements::has_stats<P>::value &&
          policy_requirements::has_size_approx<P>::value &&
          policy_requirements::has_stats_approx<P>::value &&
          policy_requirements::has_flush<P>::value> {};

template <class P>
inline constexpr bool is_registry_policy_v = is_registry_policy<P>::value;

namespace detail {

/// Fails compilation with one message per unmet requirement. Instantiated by
/// ConnectionRegistry<P>; evaluates to true when P is a policy.
template <class P>
constexpr bool check_policy() {
  using namespace policy_requirements;
  static_assert(std::is_default_constructible_v<P>,
                "wsreg: Policy requirements not met: P must be default-constructible");
  static_assert(has_insert<P>::value,
                "wsreg: Policy requirements not met: missing "
                "p.insert(ConnectionId, std::shared_ptr<Sender>)");
  static_assert(has_erase<P>::value,
                "wsreg: Policy requirements not met: missing p.erase(ConnectionId)");
  static_assert(has_send<P>::value,
                "wsreg: Policy requirements not met: missing p.send(ConnectionId, Payload)");
  static_assert(has_broadcast<P>::value,
                "wsreg: Policy requirements not met: missing "
                "p.broadcast(Payload, ConnectionId except)");
  static_assert(has_size<P>::value,
                "wsreg: Policy requirements not met: missing p.size() -> std::size_t");
  static_assert(has_stats<P>::value,
                "wsreg: Policy requirements not met: missing p.stats() -> RegistryStats");
  static_assert(has_size_approx<P>::value,
                "wsreg: Policy requirements not met: missing p.size_approx() -> std::size_t");
  static_assert(has_stats_approx<P>::value,
                "wsreg: Policy requirements not met: missing p.stats_approx() -> RegistryStats");
  static_assert(has_flush<P>::value,
                "wsreg: Policy requirements not met: missing p.flush()");
  return true;
}

}  // namespace detail
}  // namespace wsreg

#endif  // WSREG_POLICY_TRAITS_HPP
