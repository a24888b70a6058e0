"""Tests of the sample receiver's verification: python3 -m unittest -v test_receiver (in this directory)."""
import json
import unittest

from receiver import Receiver, Rejected, sign, verify

SECRET = b"0123456789abcdef0123456789abcdef-test-only"
EVENT = json.dumps({"specversion": "1.0", "id": "approval.requested/l0d_x", "type": "dev.credbroker.approval.requested",
                    "source": "https://console.example.test", "data": {"approval_id": "l0d_x"}}).encode()
NOW = 1_800_000_000


def headers(body=EVENT, timestamp=str(NOW), secret=SECRET):
    return {"X-CredBroker-Timestamp": timestamp, "X-CredBroker-Signature": sign(secret, timestamp, body)}


class VerifyTests(unittest.TestCase):
    def test_an_authentic_fresh_delivery_is_accepted(self):
        h = headers()
        self.assertEqual(verify(SECRET, h["X-CredBroker-Timestamp"], h["X-CredBroker-Signature"], EVENT, now=NOW)["id"], "approval.requested/l0d_x")

    def test_a_changed_body_is_rejected(self):
        h = headers()
        with self.assertRaisesRegex(Rejected, "signature"):
            verify(SECRET, h["X-CredBroker-Timestamp"], h["X-CredBroker-Signature"], EVENT.replace(b"l0d_x", b"l0d_y"), now=NOW)

    def test_another_secret_is_rejected(self):
        h = headers(secret=b"another-secret-another-secret-another")
        with self.assertRaises(Rejected):
            verify(SECRET, h["X-CredBroker-Timestamp"], h["X-CredBroker-Signature"], EVENT, now=NOW)

    def test_a_changed_timestamp_breaks_the_signature(self):
        h = headers()
        with self.assertRaisesRegex(Rejected, "signature"):
            verify(SECRET, str(NOW + 1), h["X-CredBroker-Signature"], EVENT, now=NOW)

    def test_an_old_delivery_is_a_replay(self):
        h = headers(timestamp=str(NOW - 301))
        with self.assertRaisesRegex(Rejected, "tolerance"):
            verify(SECRET, h["X-CredBroker-Timestamp"], h["X-CredBroker-Signature"], EVENT, now=NOW)

    def test_missing_headers_are_rejected(self):
        for timestamp, signature in [(None, None), ("", "v1=00"), ("abc", "v1=00"), (str(NOW), None), (str(NOW), "")]:
            with self.assertRaises(Rejected):
                verify(SECRET, timestamp, signature, EVENT, now=NOW)

    def test_one_of_several_signatures_may_match_during_rotation(self):
        h = headers()
        verify(SECRET, h["X-CredBroker-Timestamp"], "v1=deadbeef, " + h["X-CredBroker-Signature"], EVENT, now=NOW)

    def test_a_signed_body_that_is_not_a_cloudevent_is_rejected(self):
        body = b'{"hello": "world"}'
        h = headers(body=body)
        with self.assertRaisesRegex(Rejected, "CloudEvents"):
            verify(SECRET, h["X-CredBroker-Timestamp"], h["X-CredBroker-Signature"], body, now=NOW)


class ReceiverTests(unittest.TestCase):
    def test_a_redelivered_event_is_acknowledged_once_processed(self):
        receiver = Receiver(SECRET, tolerance=10**10)
        self.assertEqual(receiver.handle(headers(), EVENT), (200, "ok"))
        self.assertEqual(receiver.handle(headers(), EVENT)[0], 200)
        self.assertIn("duplicate", receiver.handle(headers(), EVENT)[1])

    def test_fail_first_answers_503_then_accepts(self):
        receiver = Receiver(SECRET, fail_first=1, tolerance=10**10)
        self.assertEqual(receiver.handle(headers(), EVENT)[0], 503)
        self.assertEqual(receiver.handle(headers(), EVENT), (200, "ok"))

    def test_a_forged_delivery_gets_401(self):
        h = headers()
        h["X-CredBroker-Signature"] = "v1=" + "0" * 64
        self.assertEqual(Receiver(SECRET, tolerance=10**10).handle(h, EVENT)[0], 401)


if __name__ == "__main__":
    unittest.main()
