import pytest

from transmute.core.errors import InvalidParameter
from transmute.core.options import DEFAULT_WIDTH, describe_options
from transmute.core.params import parse_params
from transmute.plugins.gif import GifOptions


def test_no_parameters_give_a_medium_quality_15_fps_gif_without_a_fixed_width():
    params = parse_params({})
    assert (params.format, params.fps, params.quality, params.dither, params.speed) == (
        "gif", 15, "medium", "bayer", 1.0)
    assert params.width is None and DEFAULT_WIDTH == 480


def test_form_fields_are_read_as_the_values_they_spell():
    params = parse_params({"width": "200", "fps": "12", "speed": "1.5", "grayscale": "yes", "reverse": "0",
                           "boomerang": "on", "end_time": "2.5", "format": " GIF "}, from_text=True)
    assert (params.width, params.fps, params.speed, params.end_time, params.format) == (200, 12, 1.5, 2.5, "gif")
    assert params.grayscale is True and params.reverse is False and params.boomerang is True


@pytest.mark.parametrize(("field", "value"), [
    ("width", 15), ("width", 5000), ("width", "wide"), ("fps", 0), ("fps", 51), ("fps", 2.5),
    ("start_time", -1), ("end_time", -3), ("quality", "ultra"), ("dither", "random"), ("speed", 0.1),
    ("speed", 5), ("grayscale", "maybe"), ("reverse", 2), ("boomerang", "sometimes"),
    ("keep_original_size", "perhaps"), ("high_quality", []), ("format", ""),
])
def test_each_bad_value_is_refused_naming_its_field(field, value):
    with pytest.raises(InvalidParameter) as refused:
        parse_params({field: value})
    assert refused.value.field == field
    assert repr(field) in refused.value.message


@pytest.mark.parametrize(("field", "text"), [("width", "abc"), ("fps", "fast"), ("speed", "x2"),
                                              ("start_time", "noon"), ("quality", "best")])
def test_bad_form_fields_are_refused_naming_their_field(field, text):
    with pytest.raises(InvalidParameter) as refused:
        parse_params({field: text}, from_text=True)
    assert refused.value.field == field and repr(field) in refused.value.message


def test_an_end_time_not_after_the_start_time_is_refused():
    with pytest.raises(InvalidParameter) as refused:
        parse_params({"start_time": 2, "end_time": 2})
    assert refused.value.field == "end_time"


def test_an_unknown_parameter_is_refused_with_the_formats_own_listed():
    with pytest.raises(InvalidParameter) as refused:
        parse_params({"colour": "red"})
    assert refused.value.field == "colour"
    assert "for the gif format" in refused.value.message
    assert all(option.name in refused.value.message for option in describe_options(GifOptions))


def test_the_options_come_back_as_the_chosen_formats_own_struct():
    params = parse_params({"format": "gif", "dither": "none"})
    assert isinstance(params, GifOptions) and params.dither == "none" and params.format == "gif"


def test_a_large_bound_is_written_whole_in_what_an_option_accepts():
    [max_size] = [option for option in describe_options(GifOptions) if option.name == "max_size_kb"]
    assert max_size.allowed == "an integer from 1 to 1048576"
    [speed] = [option for option in describe_options(GifOptions) if option.name == "speed"]
    assert speed.allowed == "a number from 0.25 to 4"
