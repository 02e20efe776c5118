// wsreg/wsreg.hpp: the umbrella header for the registry core (no transport).
// The websocketpp adapter is separate: #include "wsreg/websocketpp/server.hpp".
#ifndef WSREG_WSREG_HPP
#define WSREG_WSREG_HPP

#include "wsreg/actor_policy.hpp"
#include "wsreg/connection_registry.hpp"
#include "wsreg/mutex_policy.hpp"
#include "wsreg/payload.hpp"
#include "wsreg/policy_traits.hpp"
#include "wsreg/prometheus.hpp"
#include "wsreg/registry_options.hpp"
#include "wsreg/registry_stats.hpp"
#include "wsreg/sender.hpp"
#include "wsreg/sharded_policy.hpp"

#endif  // WSREG_WSREG_HPP
