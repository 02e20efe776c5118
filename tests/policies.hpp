// tests/policies.hpp: the one list of policies every registry test runs over.
#ifndef WSREG_TESTS_POLICIES_HPP
#define WSREG_TESTS_POLICIES_HPP

#include <tuple>
#include <type_traits>

#include "wsreg/actor_policy.hpp"
#include "wsreg/mutex_policy.hpp"

namespace wsreg_test {
using registry_policies = std::tuple<wsreg::ActorPolicy, wsreg::MutexPolicy>;

/// The name of a policy in registry_policies, for test output.
template <class Policy>
const char* policy_name() {
  return std::is_same_v<Policy, wsreg::ActorPolicy> ? "ActorPolicy" : "MutexPolicy";
}
}

#endif
