"""Borough names as real files spell them."""

from __future__ import annotations

import pytest

from registry import boroughs


@pytest.mark.parametrize(
    "variant,code",
    [
        ("Kensington & Chelsea", "E09000020"),
        ("KENSINGTON AND CHELSEA", "E09000020"),
        ("kensington and chelsea", "E09000020"),
        ("City of Westminster", "E09000033"),
        ("Westminster", "E09000033"),
        ("  Camden  ", "E09000007"),
        ("Camden\u00a0", "E09000007"),
        ("Barking & Dagenham", "E09000002"),
        ("Hammersmith & Fulham", "E09000013"),
        ("Kingston Upon Thames", "E09000021"),
        ("Richmond Upon Thames", "E09000027"),
        ("Kingston", "E09000021"),
        ("Richmond", "E09000027"),
        ("City of London", "E09000001"),
        ("London Borough of Hackney", "E09000012"),
        ("Royal Borough of Greenwich", "E09000011"),
        ("TOWER HAMLETS", "E09000030"),
        ("E09000033", "E09000033"),
        (" e09000001 ", "E09000001"),
    ],
)
def test_variants(variant: str, code: str) -> None:
    assert boroughs.lookup(variant).gss_code == code


def test_every_canonical_name_and_code_round_trips() -> None:
    assert len(boroughs.BOROUGHS) == 33
    for b in boroughs.BOROUGHS:
        assert boroughs.lookup(b.name) == b
        assert boroughs.lookup(b.gss_code) == b
        assert boroughs.lookup(b.name.upper().replace(" AND ", " & ")) == b


@pytest.mark.parametrize("value", ["Camdem", "Gotham", "", "E09000034", "E12000007", "Unknown"])
def test_unknown_names_say_what_is_accepted(value: str) -> None:
    with pytest.raises(boroughs.UnknownBoroughError) as info:
        boroughs.lookup(value)
    message = str(info.value)
    assert "Accepted" in message and "Westminster" in message and "E09000001" in message


def test_suggestion_for_a_slip() -> None:
    with pytest.raises(boroughs.UnknownBoroughError) as info:
        boroughs.lookup("Camdem")
    assert info.value.suggestion == "Camden"
    assert "Did you mean 'Camden'?" in str(info.value)


@pytest.mark.parametrize(
    "area",
    [
        "London Heathrow and London City Airports",
        "Aviation Security (SO18)",
        "Aviation Security(SO18)",
        "Unknown",
        "Other / NK",
        "N/K (Legacy Only)",
        "Non Met Police Force",
        "UNKNOWN",
    ],
)
def test_met_pseudo_areas(area: str) -> None:
    assert boroughs.pseudo_area_name(area) is not None
    assert boroughs.find(area) is None


def test_boroughs_are_not_pseudo_areas() -> None:
    assert not any(boroughs.pseudo_area_name(b.name) for b in boroughs.BOROUGHS)
