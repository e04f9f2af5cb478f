{{ spec.set }}
