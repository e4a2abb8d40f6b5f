from decimal import Decimal

import pytest

from costs.templatetags.money import money


@pytest.mark.parametrize(("value", "shown"), [(Decimal("12.345"), "12.35"), (Decimal("0.00123"), "0.0012"),
                                              (0, "0.00"), (Decimal("-0.5"), "-0.5000"), (None, "")])
def test_small_amounts_keep_their_digits(value, shown):
    assert money(value) == shown
