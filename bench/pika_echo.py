"""A raw pika echo responder: the floor of an AMQP request/reply round trip on this machine.

``python bench/pika_echo.py <amqp uri> <queue>`` consumes ``queue`` (declared here, auto-delete)
and publishes each body unchanged to its ``reply_to`` (default exchange) with the same
``correlation_id``. One connection, one thread, no JSON decoding: as little work as possible.
SIGTERM/SIGINT stop it.
"""
import signal
import sys

import pika


def main(amqp_uri, queue):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    channel.basic_qos(prefetch_count=64)

    def on_request(ch, method, properties, body):
        ch.basic_publish("", properties.reply_to, body,
                         pika.BasicProperties(correlation_id=properties.correlation_id,
                                              content_type=properties.content_type))
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_request)
    print("pika echo ready", flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            connection.close()
        except Exception:  # interrupted mid-frame: the broker drops the connection anyway
            pass


def _interrupt(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main(sys.argv[1], sys.argv[2])
