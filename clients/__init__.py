"""What calls the model server from outside, as a client would: bounded load on the loopback address
(`load.py`: one keep-alive client, background, open- and closed-loop load) and raw CSV rows as the
requests a client sends (`raw_examples.py`: typed values and serialized tf.Examples). The server's
package never imports them; the monitor's replay, the benchmarks and the tests do.

May import: config, models.
"""
