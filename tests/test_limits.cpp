#include "wsreg/websocketpp/server.hpp"

#include <catch2/catch.hpp>
