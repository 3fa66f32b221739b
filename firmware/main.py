# Runs the device: the loader picks the application slot (app/a or app/b) and runs it.
# main.py and loader.py are never updated over the air: a bug here needs USB.
import loader

loader.main("device.json")
