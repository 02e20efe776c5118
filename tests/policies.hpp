// tests/policies.hpp: the one list of policies every registry test runs over.
#ifndef WSREG_TESTS_POLICIES_HPP
#define WSREG_TESTS_POLICIES_HPP

#include <tuple>

#include "wsreg/actor_policy.hpp"
#include "wsreg/mutex_policy.hpp"

namespace wsreg_test {
using registry_policies = std::tuple<wsreg::ActorPolicy, wsreg::MutexPolicy>;
}

#endif
