// tests/tls_support.hpp: a self-signed certificate made at test time with the
// openssl command line, and a wss:// client pool.
#ifndef WSREG_TESTS_TLS_SUPPORT_HPP
#define WSREG_TESTS_TLS_SUPPORT_HPP

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include <asio/ssl/context.hpp>
#include <websocketpp/config/asio_client.hpp>

#include "client_pool.hpp"

namespace wsreg_test {

/// A certificate and key for CN=localhost (and IP 127.0.0.1), valid for a
/// day, in a temporary directory removed with the object. Made by the
/// `openssl` command (Debian's openssl package): an EC P-256 key, so
/// generating it takes milliseconds. With a password, the key file is
/// encrypted with it. Throws std::runtime_error if openssl fails.
class TestCertificate {
 public:
  explicit TestCertificate(const std::string& password = "") {
    char dir_template[] = "/tmp/wsreg-tls-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir_template;
    const std::string key_out = password.empty() ? " -nodes" : " -passout pass:" + password;
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 1"
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1" +
        key_out + " -keyout " + key_file() + " -out " + certificate_file() + " 2>/dev/null";
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("could not make a test certificate: " + command);
    }
  }
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;
  ~TestCertificate() {
    std::remove(key_file().c_str());
    std::remove(certificate_file().c_str());
    ::rmdir(dir_.c_str());
  }

  std::string certificate_file() const { return dir_ + "/cert.pem"; }
  std::string key_file() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
};

/// websocketpp TLS client config whose connections carry their pool index.
struct TlsClientConfig : websocketpp::config::asio_tls_client {
  using type = TlsClientConfig;
  struct connection_base {
    std::size_t pool_index = 0;
  };
};

/// A pool of wss:// clients that do not verify the server's certificate
/// (the test's own, self-signed).
class TlsClientPool : public BasicClientPool<TlsClientConfig> {
 public:
  TlsClientPool()
      : BasicClientPool<TlsClientConfig>([](Client& client) {
          client.set_tls_init_handler([](websocketpp::connection_hdl) {
            auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
            context->set_verify_mode(asio::ssl::verify_none);
            return context;
          });
        }) {}
};

}  // namespace wsreg_test

#endif
