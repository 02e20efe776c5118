#include "wsreg/prometheus.hpp"

#include <string>

#include <catch2/catch.hpp>

TEST_CASE("the metrics text follows the Prometheus exposition format", "[metrics]") {
  wsreg::RegistryStats stats;
  stats.connections_added = 7;
  stats.connections_removed = 2;
  stats.messages_sent = 1000;
  stats.messages_dropped = 3;
  stats.send_unknown = 4;
  stats.broadcasts = 5;
  stats.mailbox_depth = 11;
  stats.mailbox_high_water = 300;
  stats.mailbox_waits = 12;
  const std::string text = wsreg::prometheus_text(stats, 5);

  CHECK(text.find("# TYPE wsreg_connections gauge\nwsreg_connections 5\n") != std::string::npos);
  CHECK(text.find("# TYPE wsreg_messages_sent_total counter\nwsreg_messages_sent_total 1000\n") !=
        std::string::npos);
  CHECK(text.find("wsreg_messages_dropped_total 3\n") != std::string::npos);
  CHECK(text.find("wsreg_send_unknown_total 4\n") != std::string::npos);
  CHECK(text.find("wsreg_connections_added_total 7\n") != std::string::npos);
  CHECK(text.find("wsreg_connections_removed_total 2\n") != std::string::npos);
  CHECK(text.find("wsreg_broadcasts_total 5\n") != std::string::npos);
  CHECK(text.find("# HELP wsreg_mailbox_depth ") != std::string::npos);
  CHECK(text.find("# TYPE wsreg_mailbox_depth gauge\nwsreg_mailbox_depth 11\n") != std::string::npos);
  CHECK(text.find("# HELP wsreg_mailbox_high_water ") != std::string::npos);
  CHECK(text.find("# TYPE wsreg_mailbox_high_water gauge\nwsreg_mailbox_high_water 300\n") !=
        std::string::npos);
  CHECK(text.find("# HELP wsreg_mailbox_waits_total ") != std::string::npos);
  CHECK(text.find("# TYPE wsreg_mailbox_waits_total counter\nwsreg_mailbox_waits_total 12\n") !=
        std::string::npos);
  // Every line is a comment or "name value", and the text ends with a newline.
  CHECK(text.back() == '\n');
}
