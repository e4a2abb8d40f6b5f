from decimal import Decimal

import pytest

from costs.templatetags.money import money


@pytest.mark.parametrize(("value", "shown"), [(Decimal("12.345"), "12.35"), (Decimal("0.00123"), "0.0012"),
                                              (0, "0.00"), (Decimal("-0.5"), "-0.5000"), (None, "")])
def test_small_amounts_keep_their_digits(value, shown):
    assert money(value) == shown


@pytest.mark.parametrize(("value", "shown"), [(Decimal("0.00004"), "< 0.0001"), (Decimal("0.00000001"), "< 0.0001"),
                                              (Decimal("-0.00002"), "> -0.0001"), (Decimal("0.00005"), "0.0001")])
def test_a_tiny_non_zero_amount_does_not_read_as_free(value, shown):
    assert money(value) == shown
