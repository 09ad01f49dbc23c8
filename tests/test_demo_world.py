import numpy as np

from hadis.demo.world import (
    COLOURS,
    HELD_OUT,
    Obj,
    example,
    relation,
    render,
    sample_scene,
    split,
)


def test_same_seed_same_example_and_streams_are_stable():
    a_img, a_text, a_scene = example(3, 17)
    b_img, b_text, b_scene = example(3, 17)
    assert a_text == b_text and a_scene == b_scene
    assert np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert example(4, 17)[1] != a_text or example(4, 17)[2] != a_scene


def test_caption_names_every_object_and_the_relations_hold():
    for i in range(200):
        img, text, scene = example(0, i)
        assert img.size == (32, 32)
        for o in scene.objects:
            assert f"{o.colour} {o.shape}" in text
        if len(scene.objects) >= 2:
            a, b = scene.objects[:2]
            assert f"{a.colour} {a.shape} {relation(a, b)} " in text
            rel = relation(a, b)
            if rel == "left of":
                assert a.x < b.x
            elif rel == "right of":
                assert a.x > b.x
            elif rel == "above":
                assert a.y < b.y
            else:
                assert a.y > b.y


def test_rendered_colours_appear_where_the_objects_are():
    scene = sample_scene(np.random.default_rng(5), n_objects=2)
    img = np.asarray(render(scene, size=64)).astype(int)
    for o in scene.objects:
        px = img[int(o.y * 64), int(o.x * 64)]
        assert np.abs(px - np.array(COLOURS[o.colour])).max() < 40


def test_held_out_split_has_only_unseen_combinations():
    train = split(1, 100, held_out=False)
    test = split(1, 30, held_out=True)
    assert len(train) == 100 and len(test) == 30
    for _, text in train:
        assert not any(f"{c} {s}" in text for s, c in HELD_OUT)
    for _, text in test:
        assert any(f"{c} {s}" in text for s, c in HELD_OUT)


def test_relation_of_two_objects():
    a = Obj("circle", "red", "small", 0.2, 0.5)
    b = Obj("square", "blue", "small", 0.8, 0.5)
    assert relation(a, b) == "left of" and relation(b, a) == "right of"
    c = Obj("circle", "red", "small", 0.5, 0.1)
    assert relation(c, b) == "above"  # |dy| = 0.4 > |dx| = 0.3
