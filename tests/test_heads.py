"""A model's outputs by name: dict outputs keep their keys, list outputs take the output names."""
import keras

from geoest.heads import SCENE_HEAD, output_sizes


def test_output_sizes_of_dict_and_list_outputs():
    image = keras.Input((8,))
    heads = {"coarse": keras.layers.Dense(3, name="coarse")(image), "fine": keras.layers.Dense(7, name="fine")(image),
             SCENE_HEAD: keras.layers.Dense(16, name=SCENE_HEAD)(image)}
    assert output_sizes(keras.Model(image, heads)) == {"coarse": 3, "fine": 7, "scene": 16}
    listed = keras.Model(image, [heads["fine"], heads["coarse"]])
    assert output_sizes(listed) == {"fine": 7, "coarse": 3}
