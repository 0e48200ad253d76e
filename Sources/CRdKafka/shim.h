#ifndef CHATLEDGER_CRDKAFKA_SHIM_H
#define CHATLEDGER_CRDKAFKA_SHIM_H

// librdkafka's client API and its in-process mock cluster (a real Kafka-protocol
// broker used by tests and by `chatledger run` without `--brokers`).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#endif
